"""LapSRN (Lai et al., "Deep Laplacian Pyramid Networks for Fast and Accurate Super-Resolution", CVPR 2017) and
MS-LapSRN (Lai et al., "Fast and Accurate Image Super-Resolution with Deep Laplacian Pyramid Networks",
TPAMI 2018).

Both progressively upsample by x2 per pyramid level. A feature-extraction branch (3x3 convs with LeakyReLU 0.2
and a stride-2 transposed conv per level) predicts a residual image at each level, which is added to the
image-reconstruction branch (a 4x4 stride-2 transposed conv, initialised with the bilinear kernel as in the
papers and the official code, per level; a bicubic kernel does not fit: at stride 2 it needs 4 taps per output
phase, i.e. an 8x8 transposed conv).
Every level's image is an output: in training mode the networks return the list of all levels (x2, x4, …) so
that the loss supervises each of them (Charbonnier at every level, as in the papers); in eval mode only the
last one. Y channel (one channel in and out) in [0, 1], as the official MatConvNet models.

Geometry of the official MatConvNet layers (``dagnn.ConvTranspose``): the feature upsampling is a 3x3 transposed
conv, stride 2, cropped by [top 0, bottom 1, left 0, right 1] (output 2H); the image upsampling a 4x4 one
cropped by 1 on every side (PyTorch ``padding=1``, output 2H).

Non-power-of-two scales (x3) run ceil(log2 s) levels and resize the last output to s·H x s·W with bicubic
interpolation (``antialias=True``), as the official test code does with MATLAB ``imresize``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SLOPE = 0.2


def bilinear_kernel(size: int = 4) -> torch.Tensor:
    """The (size, size) bilinear upsampling kernel for a stride size/2 transposed conv (MatConvNet's
    ``bilinear_kernel``; for size 4 the 1-D taps are 0.25, 0.75, 0.75, 0.25)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    taps = 1 - np.abs(np.arange(size) - center) / factor
    return torch.from_numpy(np.outer(taps, taps)).float()


class FeatureUpsample(nn.Module):
    """x2 transposed conv (num_feat -> num_feat, kernel f, stride 2) cropped to exactly 2H x 2W the way
    MatConvNet's ``crop`` does: ``floor((f-2)/2)`` rows/cols at the top/left (PyTorch padding), the rest at the
    bottom/right. Keys ``weight`` (Cin, Cout, f, f), ``bias``."""

    def __init__(self, num_feat: int, kernel_size: int = 3) -> None:
        super().__init__()
        pad = (kernel_size - 2) // 2
        self.extra = kernel_size - 2 - 2 * pad
        self.up = nn.ConvTranspose2d(num_feat, num_feat, kernel_size, stride=2, padding=pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.up(x)
        if self.extra:
            out = out[..., : out.shape[-2] - self.extra, : out.shape[-1] - self.extra]
        return out


def image_upsample(channels: int) -> nn.ConvTranspose2d:
    """Per-channel 4x4 stride-2 transposed conv (no bias), bilinear initialisation."""
    up = nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1, groups=channels, bias=False)
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(4).expand(channels, 1, 4, 4))
    return up


def _levels(scale: int) -> int:
    if scale < 2:
        raise ValueError(f"LapSRN scales are >= 2, got {scale}")
    return math.ceil(math.log2(scale))


def _msra_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.weight.shape[-1] != 4:
            fan_in = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
            if isinstance(m, nn.ConvTranspose2d):
                fan_in = m.weight.shape[0] * m.weight.shape[2] * m.weight.shape[3]
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_in))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class _Pyramid(nn.Module):
    """Shared forward logic: ``levels_forward(x, n)`` -> list of n images (x2, x4, …)."""

    upscale: int

    def forward(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor | list[torch.Tensor]:
        """(N, C, H, W) -> eval: (N, C, sH, sW); training: list of the level outputs (N, C, 2^k H, 2^k W),
        k = 1 … ceil(log2 s) (a non-power-of-two s adds the resized final image)."""
        s = self.upscale if scale is None else int(scale)
        outs = self.levels_forward(x, _levels(s))
        if 2 ** len(outs) != s:
            outs.append(F.interpolate(outs[-1], size=(x.shape[-2] * s, x.shape[-1] * s), mode="bicubic",
                                      align_corners=False, antialias=True))
        return outs if self.training else outs[-1]

    def levels_forward(self, x: torch.Tensor, n: int) -> list[torch.Tensor]:
        raise NotImplementedError


class LapSRNLevel(nn.Module):
    """One pyramid level: ``depth`` convs (+LeakyReLU), feature upsampling (+LeakyReLU), residual conv, image
    upsampling. Keys ``convs.{d}``, ``upconv.up``, ``residual``, ``img_up``."""

    def __init__(self, channels: int, num_feat: int, depth: int, kernel_size: int) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.convs = nn.ModuleList(nn.Conv2d(num_feat, num_feat, kernel_size, 1, pad) for _ in range(depth))
        self.upconv = FeatureUpsample(num_feat, kernel_size)
        self.residual = nn.Conv2d(num_feat, channels, kernel_size, 1, pad)
        self.img_up = image_upsample(channels)


class LapSRN(_Pyramid):
    """LapSRN: input conv (+LeakyReLU) then one :class:`LapSRNLevel` per x2 step, each with its own weights.

    Args:
        num_in_ch: image channels (1: Y, as published).
        num_feat: 64. depth: convs per level (10 in the released models). upscale: 2, 4, 8 (3: see module doc).
        kernel_size: 3.

    Keys ``input_conv``, ``levels.{i}.…`` with ``levels.0`` the first (x2) level — MatConvNet ``level<L>``, the
    last one ``level1``. 814,242 parameters at x4 (the released ``LapSRN_x4.mat``).

    Shapes: (N, C, H, W) in [0, 1] -> (N, C, H*upscale, W*upscale) (eval; list of levels in training).
    """

    def __init__(self, num_in_ch: int = 1, num_feat: int = 64, depth: int = 10, upscale: int = 4,
                 kernel_size: int = 3) -> None:
        super().__init__()
        self.upscale = int(upscale)
        self.scales = tuple(2**k for k in range(1, _levels(self.upscale) + 1))
        self.input_conv = nn.Conv2d(num_in_ch, num_feat, kernel_size, 1, kernel_size // 2)
        self.levels = nn.ModuleList(
            LapSRNLevel(num_in_ch, num_feat, depth, kernel_size) for _ in range(_levels(self.upscale))
        )
        _msra_init(self)

    def levels_forward(self, x: torch.Tensor, n: int) -> list[torch.Tensor]:
        if n > len(self.levels):
            raise ValueError(f"this LapSRN has {len(self.levels)} levels (up to x{2 ** len(self.levels)})")
        feat = F.leaky_relu(self.input_conv(x), SLOPE)
        img, outs = x, []
        for level in self.levels[:n]:
            for conv in level.convs:
                feat = F.leaky_relu(conv(feat), SLOPE)
            feat = F.leaky_relu(level.upconv(feat), SLOPE)
            img = level.img_up(img) + level.residual(feat)
            outs.append(img)
        return outs


class MSLapSRN(_Pyramid):
    """MS-LapSRN: LapSRN with all weights shared across pyramid levels, and inside each level ``recursive``
    applications of one recursive block of ``depth`` pre-activation convs (LeakyReLU, conv) with a local skip.

    Args:
        num_in_ch: 1 (Y). num_feat: 64. depth: D convs per recursive block (5). recursive: R (8 for D5R8).
        upscale: default scale (the levels are shared, so one model serves x2, x4, x8 — and x3 by resizing).
        skip: local residual learning — ``"SS"`` (shared source: add the level input; the released models),
            ``"DS"`` (distinct source: add the block input) or ``"NS"`` (none).
        kernel_size: 3.

    Keys ``input_conv``, ``convs.{d}`` (the recursive block), ``upconv.up``, ``residual``, ``img_up``.
    222,801 parameters for D5R8 (paper: 222K), independent of the scale.

    Shapes: (N, C, H, W) in [0, 1] -> (N, C, H*s, W*s) (eval; list of levels in training).
    """

    def __init__(self, num_in_ch: int = 1, num_feat: int = 64, depth: int = 5, recursive: int = 8,
                 upscale: int = 4, skip: str = "SS", kernel_size: int = 3) -> None:
        super().__init__()
        if skip not in ("SS", "DS", "NS"):
            raise ValueError(f"MSLapSRN skip must be 'SS', 'DS' or 'NS', got {skip!r}")
        if depth < 1 or recursive < 1:
            raise ValueError(f"MSLapSRN needs depth >= 1 and recursive >= 1, got D={depth}, R={recursive}")
        self.upscale = int(upscale)
        self.scales = (2, 3, 4, 8)
        self.skip = skip
        self.recursive = recursive
        pad = kernel_size // 2
        self.input_conv = nn.Conv2d(num_in_ch, num_feat, kernel_size, 1, pad)
        self.convs = nn.ModuleList(nn.Conv2d(num_feat, num_feat, kernel_size, 1, pad) for _ in range(depth))
        self.upconv = FeatureUpsample(num_feat, kernel_size)
        self.residual = nn.Conv2d(num_feat, num_in_ch, kernel_size, 1, pad)
        self.img_up = image_upsample(num_in_ch)
        _msra_init(self)

    def levels_forward(self, x: torch.Tensor, n: int) -> list[torch.Tensor]:
        level_input = self.input_conv(x)
        img, outs = x, []
        for _ in range(n):
            out = level_input
            for _ in range(self.recursive):
                h = out
                for conv in self.convs:
                    h = conv(F.leaky_relu(h, SLOPE))
                if self.skip == "SS":
                    h = h + level_input
                elif self.skip == "DS":
                    h = h + out
                out = h
            level_input = self.upconv(F.leaky_relu(out, SLOPE))
            img = self.img_up(img) + self.residual(level_input)
            outs.append(img)
        return outs
