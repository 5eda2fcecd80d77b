"""VDSR (Kim et al., CVPR 2016): a deep plain conv stack predicting the residual of a bicubic-upsampled input."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class VDSR(nn.Module):
    """``x + f(x)``, f = num_layers 3x3 convs (ReLU after all but the last), all with biases, at HR resolution.

    The input is already upsampled to the target size (MATLAB bicubic), so the network has no ``upscale``; one
    model serves every scale, as in the paper. The official model (MATLAB/caffe) works on the Y channel:
    ``num_in_ch = num_out_ch = 1``.

    Layer naming: the convs are ``layers.0 … layers.{num_layers-1}`` in order (``layers.0``: num_in_ch ->
    num_feat, ``layers.{num_layers-1}``: num_feat -> num_out_ch), so the official 20-layer weight list maps index
    by index (MATLAB weights are H x W x C_in x C_out: permute to C_out x C_in x H x W). ReLUs are applied
    functionally and own no keys.

    Initialisation: He et al. (Kaiming normal, fan-in, gain sqrt(2)) for every conv, zero biases, as in the paper.

    Args:
        num_in_ch / num_out_ch: channels (1 for Y; the residual needs ``num_in_ch`` equal to ``num_out_ch`` or 1).
        num_feat: filters per hidden layer (64).
        num_layers: total convs d (20); at least 2.

    Shapes: (N, num_in_ch, H, W) -> (N, num_out_ch, H, W); values in [0, 1] (not clamped).
    """

    def __init__(self, num_in_ch: int = 1, num_out_ch: int = 1, num_feat: int = 64, num_layers: int = 20) -> None:
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"VDSR num_layers must be >= 2, got {num_layers}")
        if num_in_ch not in (1, num_out_ch):
            raise ValueError(
                f"VDSR adds its input to the output: num_in_ch ({num_in_ch}) must equal num_out_ch ({num_out_ch})"
            )
        channels = [num_in_ch] + [num_feat] * (num_layers - 1) + [num_out_ch]
        self.layers = nn.ModuleList(nn.Conv2d(c_in, c_out, 3, 1, 1) for c_in, c_out in zip(channels, channels[1:]))
        for conv in self.layers:
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for conv in self.layers[:-1]:
            out = F.relu(conv(out), inplace=True)
        return x + self.layers[-1](out)
