"""Building blocks shared by several networks (BasicSR's ``arch_util`` equivalents, same key names and numerics).

- :func:`default_init_weights`: Kaiming-normal init scaled by a factor (BasicSR's 0.1-scaled residual init).
- :func:`make_layer`: ``nn.Sequential`` of identical blocks (keys ``0 … n-1``).
- :class:`ResidualBlockNoBN`: conv-ReLU-conv + identity, keys ``conv1`` / ``conv2`` (EDSR, MSRResNet).
- :class:`Upsample`: conv + pixel shuffle stages for x2^n and x3, keys ``0, 2, …`` (EDSR, RCAN).
- :func:`upsample2x_bilinear`: 2x bilinear ``interpolate``, which switches to a formulation with a deterministic
  CUDA backward when ``torch.use_deterministic_algorithms(True)`` is on (``trainer.deterministic=true``);
  PyTorch's own bilinear backward kernel uses atomic adds and raises in that mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def upsample2x_bilinear(x: torch.Tensor) -> torch.Tensor:
    """``F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)`` for (N, C, H, W); under
    deterministic algorithms the same values from shifted copies: output ``2i`` is ``0.25 x[i-1] + 0.75 x[i]``,
    output ``2i+1`` is ``0.75 x[i] + 0.25 x[i+1]`` along each axis (edges clamped)."""
    if not torch.are_deterministic_algorithms_enabled():
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    for dim in (2, 3):
        n = x.shape[dim]
        prev = torch.cat([x.narrow(dim, 0, 1), x.narrow(dim, 0, n - 1)], dim)
        nxt = torch.cat([x.narrow(dim, 1, n - 1), x.narrow(dim, n - 1, 1)], dim)
        x = torch.stack([0.25 * prev + 0.75 * x, 0.75 * x + 0.25 * nxt], dim=dim + 1).flatten(dim, dim + 1)
    return x


@torch.no_grad()
def default_init_weights(
    modules: nn.Module | Iterable[nn.Module], scale: float = 1.0, bias_fill: float = 0.0, **kwargs
) -> None:
    """Kaiming-normal init (``kwargs`` go to ``nn.init.kaiming_normal_``) of every Conv2d / Linear, times ``scale``.

    Biases are filled with ``bias_fill``; BatchNorm weights are set to 1 and biases to ``bias_fill``. With the
    defaults (``a=0, mode='fan_in', nonlinearity='leaky_relu'``) the std is sqrt(2 / fan_in), as in BasicSR.
    """
    if isinstance(modules, nn.Module):
        modules = [modules]
    for module in modules:
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, **kwargs)
                m.weight.mul_(scale)
                if m.bias is not None:
                    m.bias.fill_(bias_fill)
            elif isinstance(m, _BatchNorm):
                if m.weight is not None:
                    nn.init.ones_(m.weight)
                if m.bias is not None:
                    m.bias.fill_(bias_fill)


def make_layer(block: Callable[..., nn.Module], num_blocks: int, **kwargs) -> nn.Sequential:
    """``nn.Sequential(block(**kwargs) for _ in range(num_blocks))``: state-dict keys ``0 … num_blocks-1``."""
    if num_blocks < 0:
        raise ValueError(f"num_blocks must be >= 0, got {num_blocks}")
    return nn.Sequential(*(block(**kwargs) for _ in range(num_blocks)))


class ResidualBlockNoBN(nn.Module):
    """``x + res_scale * conv2(relu(conv1(x)))`` with 3x3 convolutions (biases on), no batch norm.

    Args:
        num_feat: channels in and out.
        res_scale: residual scaling (EDSR uses 0.1 for its wide model).
        pytorch_init: keep PyTorch's default init (EDSR, RCAN); otherwise Kaiming-normal x 0.1 (MSRResNet).

    Shapes: (N, num_feat, H, W) -> (N, num_feat, H, W).
    """

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0, pytorch_init: bool = False) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)
        if not pytorch_init:
            default_init_weights([self.conv1, self.conv2], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu(self.conv1(x)))
        return x + out * self.res_scale


def is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


class Upsample(nn.Sequential):
    """Sub-pixel upsampler: log2(scale) x [conv 3x3 (C -> 4C), pixel shuffle 2] for scale 2^n, or one
    [conv 3x3 (C -> 9C), pixel shuffle 3] for scale 3. Convs sit at indices 0, 2, 4 … (BasicSR's layout).

    Scale 1 gives an empty (identity) sequence. Other scales raise ``ValueError``.

    Shapes: (N, num_feat, H, W) -> (N, num_feat, H*scale, W*scale).
    """

    def __init__(self, scale: int, num_feat: int) -> None:
        layers: list[nn.Module] = []
        if is_power_of_two(scale):
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"upscale {scale} is not supported: use a power of two (1, 2, 4, 8 …) or 3")
        super().__init__(*layers)
