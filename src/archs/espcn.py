"""ESPCN (Shi et al., CVPR 2016): convolutions at LR resolution and a sub-pixel (pixel-shuffle) upscaler."""

from __future__ import annotations

import torch
from torch import nn


class ESPCN(nn.Module):
    """conv 5x5 (64) + tanh -> conv 3x3 (32) + tanh -> conv 3x3 (C * r^2) -> pixel shuffle (r).

    Args:
        num_in_ch / num_out_ch: 1 (Y, as in the paper) or 3 (RGB).
        upscale: scale factor r.
        num_feat: filters of the first layer (64); the second has half as many (32).

    Shapes: (N, num_in_ch, H, W) -> (N, num_out_ch, H*r, W*r); values in [0, 1] (not clamped).
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, upscale: int = 4, num_feat: int = 64) -> None:
        super().__init__()
        if upscale < 1:
            raise ValueError(f"ESPCN upscale must be >= 1, got {upscale}")
        self.upscale = upscale
        self.conv1 = nn.Conv2d(num_in_ch, num_feat, 5, padding=2)
        self.conv2 = nn.Conv2d(num_feat, num_feat // 2, 3, padding=1)
        self.conv3 = nn.Conv2d(num_feat // 2, num_out_ch * upscale**2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.conv1(x))
        x = torch.tanh(self.conv2(x))
        return self.shuffle(self.conv3(x))
