"""RCAN (Zhang et al., ECCV 2018): residual groups of residual channel-attention blocks (RCAB).

Same constructor, state-dict keys and numerics as BasicSR's ``RCAN`` (``basicsr/archs/rcan_arch.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from src.archs.blocks import Upsample, make_layer
from src.archs.edsr import DIV2K_RGB_MEAN, mean_buffer


class ChannelAttention(nn.Module):
    """``x * sigmoid(conv1x1(relu(conv1x1(avgpool(x)))))``; keys ``attention.1`` (C -> C/r), ``attention.3``.

    Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, num_feat: int, squeeze_factor: int = 16) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(num_feat, num_feat // squeeze_factor, 1, padding=0),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_feat // squeeze_factor, num_feat, 1, padding=0),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention(x)


class RCAB(nn.Module):
    """``x + res_scale * CA(conv(relu(conv(x))))``; keys ``rcab.0`` / ``rcab.2`` (3x3 convs), ``rcab.3.attention…``.

    Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, num_feat: int, squeeze_factor: int = 16, res_scale: float = 1) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.rcab = nn.Sequential(
            nn.Conv2d(num_feat, num_feat, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_feat, num_feat, 3, 1, 1),
            ChannelAttention(num_feat, squeeze_factor),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rcab(x) * self.res_scale + x


class ResidualGroup(nn.Module):
    """``x + conv(RCAB_n(…RCAB_1(x)))``; keys ``residual_group.{j}…`` and ``conv``.

    Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, num_feat: int, num_block: int, squeeze_factor: int = 16, res_scale: float = 1) -> None:
        super().__init__()
        self.residual_group = make_layer(
            RCAB, num_block, num_feat=num_feat, squeeze_factor=squeeze_factor, res_scale=res_scale
        )
        self.conv = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.residual_group(x)) + x


class RCAN(nn.Module):
    """conv_first -> body (num_group x ResidualGroup) -> conv_after_body (+ long skip) -> upsample -> conv_last.

    Mean shift and ``img_range`` as in :class:`~src.archs.edsr.EDSR`. The paper's model is 10 groups x 20 blocks
    (set ``num_block=20``); the class keeps BasicSR's default ``num_block=16``.

    Args:
        num_in_ch / num_out_ch: image channels.
        num_feat: trunk channels (64).
        num_group: residual groups (10).
        num_block: RCABs per group (BasicSR default 16; the paper uses 20).
        squeeze_factor: channel reduction r of the attention (16); ``num_feat // squeeze_factor`` must be >= 1.
        upscale: 2^n or 3.
        res_scale: residual scaling inside each RCAB.
        img_range / rgb_mean: as in EDSR.

    State-dict keys: ``conv_first``, ``body.{g}.residual_group.{b}.rcab.{0,2}``,
    ``body.{g}.residual_group.{b}.rcab.3.attention.{1,3}``, ``body.{g}.conv``, ``conv_after_body``,
    ``upsample.{0,2,…}``, ``conv_last``.

    Shapes: (N, num_in_ch, H, W) -> (N, num_out_ch, H*upscale, W*upscale); values in [0, 1] (not clamped).
    """

    def __init__(
        self,
        num_in_ch: int,
        num_out_ch: int,
        num_feat: int = 64,
        num_group: int = 10,
        num_block: int = 16,
        squeeze_factor: int = 16,
        upscale: int = 4,
        res_scale: float = 1,
        img_range: float = 255.0,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        if squeeze_factor < 1 or num_feat // squeeze_factor < 1:
            raise ValueError(
                f"RCAN needs 1 <= squeeze_factor <= num_feat, got squeeze_factor={squeeze_factor}, num_feat={num_feat}"
            )
        if num_group < 0 or num_block < 0:
            raise ValueError(f"RCAN needs num_group, num_block >= 0, got {num_group}, {num_block}")
        self.upscale = upscale
        self.img_range = img_range
        self.register_buffer("mean", mean_buffer(rgb_mean, num_in_ch, num_out_ch, "RCAN"), persistent=False)

        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = make_layer(
            ResidualGroup,
            num_group,
            num_feat=num_feat,
            num_block=num_block,
            squeeze_factor=squeeze_factor,
            res_scale=res_scale,
        )
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = Upsample(upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean.to(x.dtype)
        x = (x - mean) * self.img_range
        x = self.conv_first(x)
        res = self.conv_after_body(self.body(x)) + x
        out = self.conv_last(self.upsample(res))
        return out / self.img_range + mean
