"""CARN and CARN-M (Ahn, Kang, Sohn, "Fast, Accurate, and Lightweight Super-Resolution with Cascading Residual
Network", ECCV 2018).

Key names are those of the official code (nmhkahn/CARN-pytorch, ``carn/model/carn.py``, ``carn_m.py``, ``ops.py``),
so its ``carn.pth`` / ``carn_m.pth`` load with ``strict=True`` as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
MULTI_SCALES = (2, 3, 4)


class _FixedConv1x1(nn.Module):
    """A frozen 1x1 conv (identity weight, bias = ±mean) kept as persistent buffers: the official ``MeanShift``
    stores ``shifter.weight`` / ``shifter.bias`` in its state dict but never trains them."""

    def __init__(self, bias: torch.Tensor) -> None:
        super().__init__()
        n = bias.numel()
        self.register_buffer("weight", torch.eye(n).view(n, n, 1, 1))
        self.register_buffer("bias", bias.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight.to(x.dtype), self.bias.to(x.dtype))


class MeanShift(nn.Module):
    """Adds ``sign * rgb_mean`` per channel (``sub=True``: subtracts); keys ``shifter.weight``/``shifter.bias``."""

    def __init__(self, rgb_mean: Sequence[float], sub: bool) -> None:
        super().__init__()
        sign = -1.0 if sub else 1.0
        self.shifter = _FixedConv1x1(sign * torch.tensor([float(v) for v in rgb_mean]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shifter(x)


class BasicBlock(nn.Module):
    """conv + ReLU (key ``body.0``); the 1x1 cascading fusions of CARN."""

    def __init__(self, in_ch: int, out_ch: int, ksize: int = 3, pad: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_ch, out_ch, ksize, 1, pad), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ResidualBlock(nn.Module):
    """``relu(x + conv(relu(conv(x))))`` (keys ``body.0``, ``body.2``)."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + x)


class EResidualBlock(nn.Module):
    """CARN-M's efficient residual block: group conv 3x3, ReLU, group conv 3x3, ReLU, pointwise 1x1, plus the
    identity, ReLU (keys ``body.0``, ``body.2``, ``body.4``)."""

    def __init__(self, num_feat: int, group: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(num_feat, num_feat, 3, 1, 1, groups=group),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_feat, num_feat, 3, 1, 1, groups=group),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_feat, num_feat, 1, 1, 0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + x)


class _UpsampleBranch(nn.Module):
    """(conv -> num_feat*4, ReLU, PixelShuffle(2)) per x2 step, or one x3 step; keys ``body.0``, ``body.3``."""

    def __init__(self, num_feat: int, scale: int, group: int) -> None:
        super().__init__()
        if scale in (2, 4, 8):
            steps, factor = scale.bit_length() - 1, 2
        elif scale == 3:
            steps, factor = 1, 3
        else:
            raise ValueError(f"CARN upsampling supports x2, x3, x4, x8, got x{scale}")
        layers: list[nn.Module] = []
        for _ in range(steps):
            layers += [
                nn.Conv2d(num_feat, factor * factor * num_feat, 3, 1, 1, groups=group),
                nn.ReLU(inplace=True),
                nn.PixelShuffle(factor),
            ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UpsampleBlock(nn.Module):
    """Multi-scale: branches ``up2``, ``up3``, ``up4`` chosen at forward time; single-scale: ``up``."""

    def __init__(self, num_feat: int, scale: int, multi_scale: bool, group: int) -> None:
        super().__init__()
        self.multi_scale = multi_scale
        if multi_scale:
            self.up2 = _UpsampleBranch(num_feat, 2, group)
            self.up3 = _UpsampleBranch(num_feat, 3, group)
            self.up4 = _UpsampleBranch(num_feat, 4, group)
        else:
            self.up = _UpsampleBranch(num_feat, scale, group)

    def forward(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        if not self.multi_scale:
            return self.up(x)
        if scale == 2:
            return self.up2(x)
        if scale == 3:
            return self.up3(x)
        return self.up4(x)


class _CascadingBlock(nn.Module):
    """Local cascade: three residual units, each followed by a 1x1 fusion of all earlier outputs. CARN-M shares
    one (efficient) residual block across the three units (``shared=True``: only ``b1``)."""

    def __init__(self, num_feat: int, mobile: bool, group: int) -> None:
        super().__init__()
        self.shared = mobile
        if mobile:
            self.b1 = EResidualBlock(num_feat, group)
        else:
            self.b1, self.b2, self.b3 = (ResidualBlock(num_feat) for _ in range(3))
        self.c1 = BasicBlock(num_feat * 2, num_feat, 1, 0)
        self.c2 = BasicBlock(num_feat * 3, num_feat, 1, 0)
        self.c3 = BasicBlock(num_feat * 4, num_feat, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        units = (self.b1, self.b1, self.b1) if self.shared else (self.b1, self.b2, self.b3)
        return _cascade(x, units, (self.c1, self.c2, self.c3))


def _cascade(x: torch.Tensor, units: Sequence[nn.Module], fusions: Sequence[nn.Module]) -> torch.Tensor:
    cat, out = x, x
    for unit, fuse in zip(units, fusions):
        cat = torch.cat([cat, unit(out)], dim=1)
        out = fuse(cat)
    return out


class CARN(nn.Module):
    """entry conv -> 3 cascading blocks, each followed by a 1x1 fusion of all earlier outputs (global cascade) ->
    upsampling branch -> exit conv, between a DIV2K mean subtraction and addition.

    Args:
        num_in_ch / num_out_ch: 3 (RGB).
        num_feat: 64.
        upscale: the scale the network runs at by default (``forward(x, scale)`` picks another branch).
        multi_scale: one model with x2/x3/x4 branches (``upsample.up2/up3/up4``), as the released models; else a
            single ``upsample.up`` branch for ``upscale``.
        group: groups of the convs in the efficient residual blocks and the upsampling (CARN-M: 4).
        mobile: CARN-M (efficient residual blocks shared inside each cascading block).
        rgb_mean: subtracted at the input and added at the output; values in [0, 1] (images in [0, 1]).

    Shapes: (N, 3, H, W) in [0, 1] -> (N, 3, H*s, W*s), not clamped.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        upscale: int = 4,
        multi_scale: bool = True,
        group: int = 1,
        mobile: bool = False,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        if multi_scale and upscale not in MULTI_SCALES:
            raise ValueError(f"a multi-scale CARN has x2/x3/x4 branches, got upscale={upscale}")
        if num_feat % group:
            raise ValueError(f"CARN num_feat ({num_feat}) must be divisible by group ({group})")
        self.upscale = int(upscale)
        self.scales = MULTI_SCALES if multi_scale else (self.upscale,)
        self.sub_mean = MeanShift(rgb_mean, sub=True)
        self.add_mean = MeanShift(rgb_mean, sub=False)
        self.entry = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.b1, self.b2, self.b3 = (_CascadingBlock(num_feat, mobile, group) for _ in range(3))
        self.c1 = BasicBlock(num_feat * 2, num_feat, 1, 0)
        self.c2 = BasicBlock(num_feat * 3, num_feat, 1, 0)
        self.c3 = BasicBlock(num_feat * 4, num_feat, 1, 0)
        self.upsample = UpsampleBlock(num_feat, self.upscale, multi_scale, group)
        self.exit = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        scale = self.upscale if scale is None else int(scale)
        if scale not in self.scales:
            raise ValueError(f"this CARN produces x{'/x'.join(map(str, self.scales))}, not x{scale}")
        x = self.entry(self.sub_mean(x))
        out = _cascade(x, (self.b1, self.b2, self.b3), (self.c1, self.c2, self.c3))
        return self.add_mean(self.exit(self.upsample(out, scale)))


class CARNM(CARN):
    """CARN-M: :class:`CARN` with ``mobile=True`` and ``group=4`` (the released ``carn_m.pth``)."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        upscale: int = 4,
        multi_scale: bool = True,
        group: int = 4,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__(num_in_ch, num_out_ch, num_feat, upscale, multi_scale, group, True, rgb_mean)
