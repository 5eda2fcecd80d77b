"""FSRCNN (Dong, Loy, Tang, ECCV 2016): an hourglass network on the LR input with a transposed-conv upscaler."""

from __future__ import annotations

import math

import torch
from torch import nn


class FSRCNN(nn.Module):
    """Feature extraction (5x5, d) -> shrinking (1x1, s) -> m mapping layers (3x3, s) -> expanding (1x1, d)
    -> deconvolution (9x9, stride = upscale). PReLU after every layer except the deconvolution.

    Args:
        num_in_ch / num_out_ch: 1 (Y, as in the paper) or 3 (RGB).
        upscale: scale factor (stride of the deconvolution).
        d: LR feature dimension (56).
        s: shrunk dimension (12).
        m: number of mapping layers (4).

    Shapes: (N, num_in_ch, H, W) -> (N, num_out_ch, H*upscale, W*upscale).
    """

    def __init__(
        self, num_in_ch: int = 1, num_out_ch: int = 1, upscale: int = 4, d: int = 56, s: int = 12, m: int = 4
    ) -> None:
        super().__init__()
        if upscale < 1 or d < 1 or s < 1 or m < 0:
            raise ValueError(f"FSRCNN needs upscale>=1, d>=1, s>=1, m>=0; got {upscale=}, {d=}, {s=}, {m=}")
        self.upscale = upscale
        layers: list[nn.Module] = [nn.Conv2d(num_in_ch, d, 5, padding=2), nn.PReLU(d)]
        layers += [nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        # output size: (H - 1) * r - 2 * 4 + 9 + (r - 1) = H * r
        self.deconv = nn.ConvTranspose2d(d, num_out_ch, 9, stride=upscale, padding=4, output_padding=upscale - 1)
        self._init_weights()

    def _init_weights(self) -> None:
        # Paper: He initialisation for the convolutions (PReLU), N(0, 0.001) for the deconvolution.
        for module in self.body:
            if isinstance(module, nn.Conv2d):
                fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
                nn.init.normal_(module.weight, std=math.sqrt(2.0 / fan_out))
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.deconv.weight, std=0.001)
        nn.init.zeros_(self.deconv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.body(x))
