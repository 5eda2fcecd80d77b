"""The bicubic baseline: MATLAB ``imresize`` upsampling, no parameters."""

from __future__ import annotations

import torch
from torch import nn

from src.degradations import imresize


class BicubicSR(nn.Module):
    """LR (N, C, h, w) in [0, 1] -> MATLAB-bicubic SR (N, C, h*scale, w*scale). Nothing to train."""

    trainable = False

    def __init__(self, name: str = "bicubic", scale: int = 4) -> None:
        super().__init__()
        self.name = name
        self.scale = int(scale)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return imresize(lr, float(self.scale))
