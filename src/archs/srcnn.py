"""SRCNN (Dong et al., ECCV 2014 / TPAMI 2016): three convolutions on a bicubic-upsampled input."""

from __future__ import annotations

import torch
from torch import nn


class SRCNN(nn.Module):
    """Patch extraction -> non-linear mapping -> reconstruction, all at HR resolution.

    The input is already upsampled to the target size (MATLAB bicubic), so the network has no ``upscale``.
    ``kernel_sizes`` selects the variant: ``(9, 5, 5)`` (the TPAMI default) or ``(9, 1, 5)`` (the ECCV
    baseline). Convolutions are zero-padded to keep the spatial size (the paper trained with 'valid'
    convolutions on 33 px sub-images; padding lets one network process whole images and patches alike).

    Args:
        num_in_ch: 1 (Y channel, as in the paper) or 3 (RGB).
        num_out_ch: output channels, normally equal to ``num_in_ch``.
        num_feat: n1, filters of the first layer (64).
        num_feat2: n2, filters of the mapping layer (32).
        kernel_sizes: (f1, f2, f3).

    Shapes: (N, num_in_ch, H, W) -> (N, num_out_ch, H, W); values in [0, 1] (not clamped).
    """

    def __init__(
        self,
        num_in_ch: int = 1,
        num_out_ch: int = 1,
        num_feat: int = 64,
        num_feat2: int = 32,
        kernel_sizes: tuple[int, int, int] | list[int] = (9, 5, 5),
    ) -> None:
        super().__init__()
        if len(kernel_sizes) != 3 or any(k % 2 == 0 or k < 1 for k in kernel_sizes):
            raise ValueError(f"SRCNN kernel_sizes must be three odd sizes such as (9, 5, 5), got {kernel_sizes}")
        f1, f2, f3 = (int(k) for k in kernel_sizes)
        self.conv1 = nn.Conv2d(num_in_ch, num_feat, f1, padding=f1 // 2)
        self.conv2 = nn.Conv2d(num_feat, num_feat2, f2, padding=f2 // 2)
        self.conv3 = nn.Conv2d(num_feat2, num_out_ch, f3, padding=f3 // 2)
        self.relu = nn.ReLU(inplace=True)
        # Reconstruction layer from N(0, 0.001) as in the paper; the two ReLU layers use He initialisation,
        # which converges far faster than the paper's N(0, 0.001) everywhere (their SGD ran 10^8 steps).
        for conv in (self.conv1, self.conv2, self.conv3):
            nn.init.normal_(conv.weight, std=0.001)
            nn.init.zeros_(conv.bias)
        nn.init.kaiming_normal_(self.conv1.weight, nonlinearity="relu")
        nn.init.kaiming_normal_(self.conv2.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        return self.conv3(x)
