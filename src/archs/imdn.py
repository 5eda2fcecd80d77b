"""IMDN (Hui, Gao, Yang, Wang, "Lightweight Image Super-Resolution with Information Multi-distillation Network",
ACM MM 2019).

Constructor arguments and key names are those of the official code (Zheng222/IMDN, ``model/architecture.py``,
``model/block.py``): its ``IMDN_x2/x3/x4.pth`` load as they are once the DataParallel ``module.`` prefix is
stripped (done by the weight reader for every file).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NEG_SLOPE = 0.05  # the official LeakyReLU slope


class CCALayer(nn.Module):
    """Contrast-aware channel attention: (per-channel std + mean) -> 1x1 squeeze -> ReLU -> 1x1 -> sigmoid, times x.
    Keys ``conv_du.0``, ``conv_du.2``. The std is the population std over H x W."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
        return x * self.conv_du(std + mean)


class IMDModule(nn.Module):
    """Information multi-distillation block: three 3x3 convs each split off ``distillation_rate`` of their
    channels and pass the rest on; a fourth conv gives the last distilled part; concatenation -> CCA -> 1x1
    (``c5``) + identity. Keys ``c1 … c5``, ``cca``."""

    def __init__(self, in_channels: int, distillation_rate: float = 0.25) -> None:
        super().__init__()
        self.distilled = int(in_channels * distillation_rate)
        self.remaining = in_channels - self.distilled
        self.c1 = nn.Conv2d(in_channels, in_channels, 3, 1, 1)
        self.c2 = nn.Conv2d(self.remaining, in_channels, 3, 1, 1)
        self.c3 = nn.Conv2d(self.remaining, in_channels, 3, 1, 1)
        self.c4 = nn.Conv2d(self.remaining, self.distilled, 3, 1, 1)
        self.c5 = nn.Conv2d(self.distilled * 4, in_channels, 1)
        self.cca = CCALayer(self.distilled * 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        rest = x
        for conv in (self.c1, self.c2, self.c3):
            d, rest = torch.split(F.leaky_relu(conv(rest), NEG_SLOPE), (self.distilled, self.remaining), dim=1)
            parts.append(d)
        parts.append(self.c4(rest))
        return self.c5(self.cca(torch.cat(parts, dim=1))) + x


class IMDN(nn.Module):
    """fea_conv -> ``num_modules`` IMDBs (``IMDB1 … IMDB<n>``) -> concat -> 1x1 conv + LeakyReLU (``c.0``) ->
    3x3 ``LR_conv`` + the features -> conv + pixel shuffle (``upsampler.0``).

    Args (official names): in_nc / out_nc image channels (3), nf features (64), num_modules (6), upscale.

    Shapes: (N, in_nc, H, W) in [0, 1] (no mean shift) -> (N, out_nc, H*upscale, W*upscale), not clamped.
    """

    def __init__(self, in_nc: int = 3, nf: int = 64, num_modules: int = 6, out_nc: int = 3, upscale: int = 4) -> None:
        super().__init__()
        if num_modules < 1:
            raise ValueError(f"IMDN num_modules must be >= 1, got {num_modules}")
        self.num_modules = num_modules
        self.fea_conv = nn.Conv2d(in_nc, nf, 3, 1, 1)
        for i in range(1, num_modules + 1):
            self.add_module(f"IMDB{i}", IMDModule(nf))
        self.c = nn.Sequential(nn.Conv2d(nf * num_modules, nf, 1), nn.LeakyReLU(NEG_SLOPE, inplace=True))
        self.LR_conv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.upsampler = nn.Sequential(nn.Conv2d(nf, out_nc * upscale * upscale, 3, 1, 1), nn.PixelShuffle(upscale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.fea_conv(x)
        outs = []
        out = fea
        for i in range(1, self.num_modules + 1):
            out = getattr(self, f"IMDB{i}")(out)
            outs.append(out)
        return self.upsampler(self.LR_conv(self.c(torch.cat(outs, dim=1))) + fea)
