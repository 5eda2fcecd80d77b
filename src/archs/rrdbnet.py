"""RRDBNet (Wang et al., ESRGAN, ECCVW 2018): residual-in-residual dense blocks; Real-ESRGAN's x1/x2 variants.

Same constructor, state-dict keys and numerics as BasicSR's ``RRDBNet`` (``basicsr/archs/rrdbnet_arch.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from src.archs.blocks import default_init_weights, make_layer


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs (LeakyReLU 0.2 after the first four); returns ``x + 0.2 * conv5(…)``.

    Keys ``conv1 … conv5``; conv k takes ``num_feat + (k-1) * num_grow_ch`` channels. Kaiming init x 0.1.

    Shapes: (N, num_feat, H, W) -> (N, num_feat, H, W).
    """

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        default_init_weights([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Three residual dense blocks in sequence, ``x + 0.2 * rdb3(rdb2(rdb1(x)))``; keys ``rdb1 … rdb3``.

    Shapes: (N, num_feat, H, W) -> (N, num_feat, H, W).
    """

    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN generator: conv_first -> body (num_block x RRDB) -> conv_body (+ skip) -> 2 x [nearest x2, conv_up,
    LeakyReLU 0.2] -> conv_hr -> LeakyReLU -> conv_last.

    The trunk always upsamples by 4. For ``scale`` 2 and 1 the input is first pixel-unshuffled by 2 / 4
    (Real-ESRGAN's x2 / x1 models), so ``conv_first`` takes ``num_in_ch * 4`` / ``num_in_ch * 16`` channels and
    H, W must be multiples of 2 / 4. Other scales raise ``ValueError`` (BasicSR would silently upscale by 4).

    Args:
        num_in_ch / num_out_ch: image channels.
        scale: 1, 2 or 4.
        num_feat: trunk channels (64).
        num_block: RRDBs (23 for ESRGAN).
        num_grow_ch: growth channels of the dense blocks (32).

    State-dict keys: ``conv_first``, ``body.{i}.rdb{1,2,3}.conv{1..5}``, ``conv_body``, ``conv_up1``, ``conv_up2``,
    ``conv_hr``, ``conv_last``. (Old ESRGAN checkpoints name these ``RRDB_trunk``, ``trunk_conv``, ``upconv1`` …
    and must be renamed on import.)

    Shapes: (N, num_in_ch, H, W) -> (N, num_out_ch, H*scale, W*scale); values in [0, 1] (not clamped).
    """

    def __init__(
        self,
        num_in_ch: int,
        num_out_ch: int,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        if scale not in (1, 2, 4):
            raise ValueError(f"RRDBNet scale must be 1, 2 or 4, got {scale}")
        self.scale = scale
        self.unshuffle = {1: 4, 2: 2, 4: 1}[scale]
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle**2, num_feat, 3, 1, 1)
        self.body = make_layer(RRDB, num_block, num_feat=num_feat, num_grow_ch=num_grow_ch)
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.unshuffle
        if r > 1:
            if x.shape[-2] % r or x.shape[-1] % r:
                raise ValueError(f"RRDBNet x{self.scale} needs H and W divisible by {r}, got {tuple(x.shape[-2:])}")
            x = F.pixel_unshuffle(x, r)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))
