"""EDSR (Lim et al., CVPRW 2017): residual blocks without batch norm, a long skip and a sub-pixel upsampler.

Same constructor, state-dict keys and numerics as BasicSR's ``EDSR`` (``basicsr/archs/edsr_arch.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from src.archs.blocks import ResidualBlockNoBN, Upsample, make_layer

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def mean_buffer(rgb_mean: Sequence[float], num_in_ch: int, num_out_ch: int, name: str) -> torch.Tensor:
    """The (1, C, 1, 1) mean subtracted from the input and added back to the output (C = len(rgb_mean))."""
    mean = torch.tensor([float(v) for v in rgb_mean], dtype=torch.float32)
    for what, ch in (("num_in_ch", num_in_ch), ("num_out_ch", num_out_ch)):
        if mean.numel() not in (1, ch):
            raise ValueError(
                f"{name}: rgb_mean has {mean.numel()} values but {what}={ch}; pass one value per channel "
                f"(e.g. rgb_mean=(0.5,) for single-channel images)"
            )
    return mean.view(1, -1, 1, 1)


class EDSR(nn.Module):
    """conv_first -> body (num_block x ResidualBlockNoBN) -> conv_after_body (+ long skip) -> upsample -> conv_last.

    The input is mean-shifted and scaled to the training range, ``(x - rgb_mean) * img_range``, and the output
    mapped back, ``y / img_range + rgb_mean`` (BasicSR's order; the mean is a non-persistent buffer, so it is not
    in the state dict, as in BasicSR).

    Args:
        num_in_ch / num_out_ch: image channels (3 for RGB).
        num_feat: channels of the trunk (64 baseline, 256 for the paper's EDSR).
        num_block: residual blocks (16 baseline, 32 paper).
        upscale: 2^n or 3.
        res_scale: residual scaling in the blocks (1 baseline, 0.1 paper).
        img_range: 255 for weights trained on [0, 255] images (BasicSR and official EDSR).
        rgb_mean: per-channel mean in [0, 1] (DIV2K's by default), one value per channel or a single value.

    State-dict keys: ``conv_first``, ``body.{i}.conv1``, ``body.{i}.conv2``, ``conv_after_body``,
    ``upsample.{0,2,…}`` (convs before each pixel shuffle), ``conv_last``.

    Shapes: (N, num_in_ch, H, W) -> (N, num_out_ch, H*upscale, W*upscale); values in [0, 1] (not clamped).
    """

    def __init__(
        self,
        num_in_ch: int,
        num_out_ch: int,
        num_feat: int = 64,
        num_block: int = 16,
        upscale: int = 4,
        res_scale: float = 1,
        img_range: float = 255.0,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        if num_feat < 1 or num_block < 0:
            raise ValueError(f"EDSR needs num_feat >= 1 and num_block >= 0, got {num_feat}, {num_block}")
        self.upscale = upscale
        self.img_range = img_range
        self.register_buffer("mean", mean_buffer(rgb_mean, num_in_ch, num_out_ch, "EDSR"), persistent=False)

        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = make_layer(ResidualBlockNoBN, num_block, num_feat=num_feat, res_scale=res_scale, pytorch_init=True)
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
