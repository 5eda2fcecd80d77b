"""DRRN (Tai, Yang, Liu, "Image Super-Resolution via Deep Recursive Residual Network", CVPR 2017)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RecursiveBlock(nn.Module):
    """An entry conv, then ``num_units`` residual units that share one pair of convs (``conv1``, ``conv2``):
    ``H_u = conv2(act(conv1(act(H_{u-1})))) + H_0``, act = BN + ReLU (pre-activation; ReLU only without BN).
    Batch norms are per unit (``bn1.{u}``, ``bn2.{u}``) and ``bn_entry`` before the entry conv (none for the
    first block, whose input is the image)."""

    def __init__(self, in_ch: int, num_feat: int, num_units: int, batch_norm: bool, first: bool) -> None:
        super().__init__()
        self.num_units = num_units
        self.entry = nn.Conv2d(in_ch, num_feat, 3, 1, 1, bias=False)
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False)
        self.pre_act = not first
        self.bn_entry = nn.BatchNorm2d(in_ch) if batch_norm and not first else None
        self.bn1 = nn.ModuleList(nn.BatchNorm2d(num_feat) for _ in range(num_units)) if batch_norm else None
        self.bn2 = nn.ModuleList(nn.BatchNorm2d(num_feat) for _ in range(num_units)) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_act:
            x = F.relu(self.bn_entry(x) if self.bn_entry is not None else x)
        h0 = self.entry(x)
        out = h0
        for u in range(self.num_units):
            h = self.bn1[u](out) if self.bn1 is not None else out
            h = self.conv1(F.relu(h))
            h = self.bn2[u](h) if self.bn2 is not None else h
            out = self.conv2(F.relu(h)) + h0
        return out


class DRRN(nn.Module):
    """``x + output(act(blocks(x)))``: B recursive blocks of U residual units (weights shared inside a block), a
    final conv to the image, a global residual to the (bicubic-upsampled) input. Depth = (1 + 2U)·B + 1.

    Args:
        num_in_ch / num_out_ch: 1 (Y). num_feat: 128. num_blocks: B (1). num_units: U (25 for DRRN_B1U25).
        batch_norm: pre-activation BN (as in the paper's residual units); ``False`` gives the plain ReLU
            variant of the widely used PyTorch port, whose ``input``/``conv1``/``conv2``/``output`` keys load.

    Parameters: 297,216 conv weights for B1 at any U (paper: 297K); BN adds 4·128 per unit.

    Shapes: (N, C, H, W) in [0, 1], already upsampled -> (N, C, H, W), not clamped.
    """

    def __init__(self, num_in_ch: int = 1, num_out_ch: int = 1, num_feat: int = 128, num_blocks: int = 1,
                 num_units: int = 25, batch_norm: bool = True) -> None:
        super().__init__()
        if num_blocks < 1 or num_units < 1:
            raise ValueError(f"DRRN needs num_blocks >= 1 and num_units >= 1, got B={num_blocks}, U={num_units}")
        if num_in_ch not in (1, num_out_ch):
            raise ValueError(f"DRRN adds its input to the output: num_in_ch ({num_in_ch}) must be 1 or num_out_ch")
        self.blocks = nn.ModuleList(
            RecursiveBlock(num_in_ch if b == 0 else num_feat, num_feat, num_units, batch_norm, first=b == 0)
            for b in range(num_blocks)
        )
        self.bn_out = nn.BatchNorm2d(num_feat) if batch_norm else None
        self.output = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight.shape[1] * 9
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for block in self.blocks:
            out = block(out)
        out = self.bn_out(out) if self.bn_out is not None else out
        return x + self.output(F.relu(out))
