"""StyleGAN2 generator (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020),
config-e/f: mapping MLP, modulated/demodulated 3x3 convolutions, noise inputs, skip-connected ToRGB outputs.

Parameter and buffer names follow rosinality's ``stylegan2-pytorch`` ``Generator``, so the ``g_ema`` state dict
of its checkpoints (e.g. the converted FFHQ config-f file ``stylegan2-ffhq-config-f.pt``, 1024 px) loads as is:

* ``style.1 … style.<n_mlp>``: the mapping network (``style.0`` is the parameter-free pixel norm), equalized-lr
  linear layers (``weight`` (d, d), ``bias`` (d), learning-rate multiplier ``lr_mlp``), leaky ReLU 0.2 × √2;
* ``input.input`` (1, C4, 4, 4): the learned constant;
* ``conv1``, ``convs.<i>``: styled convolutions (``conv.weight`` (1, out, in, 3, 3), ``conv.modulation.{weight,
  bias}`` (in, d)/(in), ``noise.weight`` (1), ``activate.bias`` (out)); even ``convs`` upsample x2 and hold the
  blur FIR ``conv.blur.kernel`` (4, 4);
* ``to_rgb1``, ``to_rgbs.<i>``: 1x1 modulated convolutions without demodulation, ``bias`` (1, 3, 1, 1);
  ``to_rgbs`` upsample the previous RGB with ``upsample.kernel`` (4, 4);
* ``noises.noise_<i>`` (1, 1, r, r): the stored per-layer noise maps.

Everything is plain torch (no custom CUDA ops): the FIR up/down-sampling (``upfirdn2d``) is a depthwise
``conv2d`` on a zero-stuffed, padded input, and the fused bias + leaky ReLU is ``leaky_relu(x + b, 0.2) · √2``.
At 1024 px a forward pass is ~74 G multiply-adds per image (counted from the layer shapes), nearly all in the
modulated convolutions, which are the same ``conv2d`` / ``conv_transpose2d`` calls rosinality's code makes; its
custom kernels fuse the bias + activation and the FIR filter, which saves memory traffic, not arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)


def fir_kernel(taps: Sequence[float]) -> torch.Tensor:
    """Separable 2-D FIR kernel from 1-D ``taps`` (outer product), normalised to sum 1. (K, K) float32."""
    k = torch.as_tensor(list(taps), dtype=torch.float32)
    k2 = torch.outer(k, k)
    return k2 / k2.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with the FIR ``kernel`` (a true convolution), downsample.

    ``x`` (N, C, H, W); ``kernel`` (K, K); ``pad`` = (before, after) on both axes (negative values crop).
    Output side: (H·up + before + after − K) // down + 1.
    """
    n, c, h, w = x.shape
    if up > 1:
        stuffed = x.new_zeros(n, c, h, up, w, up)
        stuffed[:, :, :, 0, :, 0] = x
        x = stuffed.reshape(n, c, h * up, w * up)
    before, after = pad
    x = F.pad(x, [max(before, 0), max(after, 0), max(before, 0), max(after, 0)])
    if before < 0 or after < 0:
        hh, ww = x.shape[-2:]
        x = x[:, :, max(-before, 0): hh - max(-after, 0), max(-before, 0): ww - max(-after, 0)]
    k = kernel.flip(0, 1).to(x.dtype)
    x = F.conv2d(x, k.expand(c, 1, *k.shape).contiguous(), groups=c)
    return x[:, :, ::down, ::down] if down > 1 else x


def bias_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """StyleGAN's fused activation: ``leaky_relu(x + bias, 0.2) · √2``; ``bias`` (C) broadcast over dim 1."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, 0.2) * SQRT2


class PixelNorm(nn.Module):
    """x / sqrt(mean(x², dim=1) + 1e-8)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate: y = x (W·lr_mul/√in)ᵀ + b·lr_mul, optionally + leaky ReLU·√2."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:
            return bias_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class Blur(nn.Module):
    """FIR filter with padding ``pad``; ``gain`` multiplies the kernel (4 after a x2 zero-stuffing upsample)."""

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], gain: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("kernel", fir_kernel(taps) * gain)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """x2 FIR upsampling (zero insertion, then the blur kernel with gain 4): (N, C, H, W) -> (N, C, 2H, 2W)."""

    def __init__(self, taps: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("kernel", fir_kernel(taps) * 4)
        p = len(taps) - 2
        self.pad = ((p + 1) // 2 + 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=2, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are scaled per sample by a style (modulation), then optionally normalised to unit
    output variance (demodulation); ``upsample=True`` makes it a stride-2 transposed convolution + blur.

    ``x`` (N, in, H, W), ``w`` (N, style_dim) -> (N, out, H, W) (or (N, out, 2H, 2W)).
    """

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int, demodulate: bool = True,
                 upsample: bool = False, blur_kernel: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.demodulate, self.upsample = demodulate, upsample
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_channel * kernel_size**2)
        if upsample:
            # transposed conv output: 2H + k - 2; the blur brings it back to 2H (len(taps) - 1 - (k - 1) padding)
            p = (len(blur_kernel) - 2) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, c, h, wd = x.shape
        style = self.modulation(w)  # (N, in)
        weight = self.weight * self.scale * style.view(n, 1, c, 1, 1)  # (N, out, in, k, k)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4)) + 1e-8).view(n, -1, 1, 1, 1)
        k = self.kernel_size
        x = x.reshape(1, n * c, h, wd)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(n * c, self.out_channel, k, k)
            out = F.conv_transpose2d(x, weight, stride=2, groups=n)
            out = self.blur(out.view(n, self.out_channel, *out.shape[-2:]))
        else:
            out = F.conv2d(x, weight.reshape(n * self.out_channel, c, k, k), padding=k // 2, groups=n)
            out = out.view(n, self.out_channel, *out.shape[-2:])
        return out


class NoiseInjection(nn.Module):
    """x + weight · noise (one learned scalar); ``noise`` (N or 1, 1, H, W), a fresh draw when ``None``."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, *x.shape[-2:]).normal_()
        return x + self.weight * noise


class FusedLeakyReLU(nn.Module):
    """Bias (C) + leaky ReLU 0.2 + gain √2 (key ``bias`` as in rosinality's layout)."""

    def __init__(self, channel: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bias_leaky_relu(x, self.bias)


class ConstantInput(nn.Module):
    def __init__(self, channel: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    """Modulated conv -> noise -> bias + leaky ReLU."""

    def __init__(self, in_channel: int, out_channel: int, style_dim: int, upsample: bool = False,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, 3, style_dim, upsample=upsample,
                                    blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, w), noise))


class ToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) + bias, plus the x2-upsampled RGB of the previous resolution."""

    def __init__(self, in_channel: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, w) + self.bias
        return out if skip is None else out + self.upsample(skip)


class StyleGAN2Generator(nn.Module):
    """StyleGAN2 generator with rosinality's parameter names (see the module docstring).

    Generator interface (used by PULSE, ``src.methods.pulse``):

    * ``latent_dim`` (= ``style_dim``), ``num_latents`` (W+ layers: 2·log2(size) − 2, 18 at 1024 px),
      ``channels`` (3), ``resolution`` (size, size);
    * ``forward(latents, noise=None)``: ``latents`` (N, num_latents, style_dim) in W+ (or (N, style_dim): one w
      for every layer) -> images (N, 3, size, size), roughly in [-1, 1]; ``noise`` a list of ``num_layers``
      tensors (N or 1, 1, r, r) shaped as :meth:`noise_shapes`, or ``None`` for the stored maps
      ``noises.noise_<i>`` (deterministic);
    * ``mapping(z)``: z (N, style_dim) ~ N(0, I) -> w (N, style_dim).

    Channels per resolution r: ``min(channel_max, channel_multiplier · 16384 / r)``, which is rosinality's table
    (512 up to 32 px, then 256·m, 128·m, 64·m, 32·m, 16·m) for ``channel_max=512``; smaller ``channel_max`` values
    give small generators for tests and CPU training.
    """

    channels = 3

    def __init__(self, size: int = 1024, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1), lr_mlp: float = 0.01, channel_max: int = 512) -> None:
        super().__init__()
        log_size = int(math.log2(size))
        if size < 4 or 2**log_size != size:
            raise ValueError(f"StyleGAN2Generator: size must be a power of 2 >= 4, got {size}")
        self.size, self.style_dim, self.log_size = size, style_dim, log_size
        self.style = nn.Sequential(
            PixelNorm(), *(EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True) for _ in range(n_mlp))
        )
        ch = {2**i: min(channel_max, channel_multiplier * 16384 // 2**i) for i in range(2, log_size + 1)}
        self.channel_table = ch
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(ch[4], style_dim, upsample=False)
        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        in_ch = ch[4]
        for i in range(3, log_size + 1):
            out_ch = ch[2**i]
            self.convs.append(StyledConv(in_ch, out_ch, style_dim, upsample=True, blur_kernel=blur_kernel))
            self.convs.append(StyledConv(out_ch, out_ch, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_ch, style_dim, blur_kernel=blur_kernel))
            in_ch = out_ch
        self.num_layers = 2 * (log_size - 2) + 1  # noise inputs
        self.noises = nn.Module()
        for i, shape in enumerate(self.noise_shapes()):
            self.noises.register_buffer(f"noise_{i}", torch.randn(shape))
        self.num_latents = 2 * log_size - 2

    @property
    def latent_dim(self) -> int:
        return self.style_dim

    @property
    def resolution(self) -> tuple[int, int]:
        return (self.size, self.size)

    def noise_shapes(self) -> list[tuple[int, int, int, int]]:
        """Shapes (1, 1, r, r) of the per-layer noise inputs: 4 px once, then two per resolution 8 … size."""
        return [(1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2)) for i in range(self.num_layers)]

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, style_dim) -> w (N, style_dim)."""
        return self.style(z)

    def forward(self, latents: torch.Tensor, noise: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        if latents.ndim == 2:
            latents = latents.unsqueeze(1).expand(-1, self.num_latents, -1)
        if latents.shape[1:] != (self.num_latents, self.style_dim):
            raise ValueError(f"latents: expected (N, {self.num_latents}, {self.style_dim}) or (N, {self.style_dim}), "
                             f"got {tuple(latents.shape)}")
        if noise is None:
            noise = [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        elif len(noise) != self.num_layers:
            raise ValueError(f"noise: expected {self.num_layers} maps, got {len(noise)}")
        out = self.conv1(self.input(latents.shape[0]), latents[:, 0], noise[0])
        skip = self.to_rgb1(out, latents[:, 1])
        for j, to_rgb in enumerate(self.to_rgbs):
            i = 2 * j + 1
            out = self.convs[2 * j](out, latents[:, i], noise[i])
            out = self.convs[2 * j + 1](out, latents[:, i + 1], noise[i + 1])
            skip = to_rgb(out, latents[:, i + 2], skip)
        return skip


def rosinality_state_dict(state: dict) -> dict:
    """The generator state dict inside a rosinality checkpoint: ``g_ema`` (preferred, as its samplers use),
    else ``g``, else the dict itself when it already has the generator's keys."""
    for key in ("g_ema", "g"):
        if key in state and isinstance(state[key], dict):
            return state[key]
    if "input.input" in state:
        return state
    raise ValueError(f"not a StyleGAN2 generator checkpoint: no 'g_ema', 'g' or 'input.input' among the keys "
                     f"{sorted(state)[:8]}")
