"""SRVGGNetCompact (Wang et al., Real-ESRGAN, ICCVW 2021): a plain conv stack at LR resolution + pixel shuffle.

Same constructor, state-dict keys and numerics as Real-ESRGAN's / BasicSR's ``SRVGGNetCompact``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACT_TYPES = ("prelu", "relu", "leakyrelu", "lrelu")


def _activation(act_type: str, num_feat: int) -> nn.Module:
    if act_type == "prelu":
        return nn.PReLU(num_parameters=num_feat)
    if act_type == "relu":
        return nn.ReLU(inplace=True)
    return nn.LeakyReLU(negative_slope=0.1, inplace=True)


class SRVGGNetCompact(nn.Module):
    """conv 3x3 -> act -> num_conv x [conv 3x3 -> act] -> conv 3x3 (C_out * r^2) -> pixel shuffle r,
    plus the nearest-neighbour upsampled input (the network learns the residual).

    Args:
        num_in_ch / num_out_ch: image channels (the residual needs ``num_in_ch`` equal to ``num_out_ch`` or 1).
        num_feat: channels of the stack (64; realesr-general-x4v3 uses 64 with num_conv=32).
        num_conv: 3x3 convs between the first and the last (16 for realesr-animevideov3, 32 for general-x4v3).
        upscale: r >= 1.
        act_type: ``'prelu'`` (channel-wise), ``'relu'`` or ``'leakyrelu'`` (slope 0.1; ``'lrelu'`` is accepted as
            an alias). Anything else raises ``ValueError``.

    State-dict keys: ``body.{2k}`` convs (``body.0`` first, ``body.{2*num_conv+2}`` last) and, for prelu,
    ``body.{2k+1}.weight`` (num_feat slopes). ReLU / LeakyReLU have no parameters.

    Shapes: (N, num_in_ch, H, W) -> (N, num_out_ch, H*upscale, W*upscale); values in [0, 1] (not clamped).
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        upscale: int = 4,
        act_type: str = "prelu",
    ) -> None:
        super().__init__()
        if act_type not in ACT_TYPES:
            raise ValueError(f"SRVGGNetCompact act_type must be one of {ACT_TYPES}, got {act_type!r}")
        if upscale < 1:
            raise ValueError(f"SRVGGNetCompact upscale must be >= 1, got {upscale}")
        if num_in_ch not in (1, num_out_ch):
            raise ValueError(
                f"SRVGGNetCompact adds the upsampled input to the output: num_in_ch ({num_in_ch}) must equal "
                f"num_out_ch ({num_out_ch}) or be 1 (broadcast)"
            )
        if num_conv < 0:
            raise ValueError(f"SRVGGNetCompact num_conv must be >= 0, got {num_conv}")
        self.num_in_ch = num_in_ch
        self.num_out_ch = num_out_ch
        self.num_feat = num_feat
        self.num_conv = num_conv
        self.upscale = upscale
        self.act_type = act_type

        self.body = nn.ModuleList([nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), _activation(act_type, num_feat)])
        for _ in range(num_conv):
            self.body.append(nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            self.body.append(_activation(act_type, num_feat))
        self.body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        return out + F.interpolate(x, scale_factor=self.upscale, mode="nearest")
