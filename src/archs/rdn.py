"""RDN (Zhang et al., CVPR 2018): residual dense blocks with local and global feature fusion.

BasicSR has no RDN. Structure and state-dict keys follow the official PyTorch port (EDSR-PyTorch
``src/model/rdn.py``) so its checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import torch
from torch import nn


class RDBConv(nn.Module):
    """One dense layer: ``cat(x, relu(conv3x3(x)))``; key ``conv.0`` (``conv.1`` is the ReLU).

    Shapes: (N, C, H, W) -> (N, C + num_grow_ch, H, W).
    """

    def __init__(self, in_ch: int, num_grow_ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_ch, num_grow_ch, 3, padding=1, stride=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.conv(x)), 1)


class RDB(nn.Module):
    """Residual dense block: ``x + LFF(dense_layers(x))``, LFF a 1x1 conv (G0 + C*G -> G0).

    Keys ``convs.{m}.conv.0`` (m = 0 … C-1, taking G0 + m*G channels) and ``LFF``.

    Shapes: (N, G0, H, W) -> (N, G0, H, W).
    """

    def __init__(self, num_feat: int, num_grow_ch: int, num_conv: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(*(RDBConv(num_feat + m * num_grow_ch, num_grow_ch) for m in range(num_conv)))
        self.LFF = nn.Conv2d(num_feat + num_conv * num_grow_ch, num_feat, 1, padding=0, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LFF(self.convs(x)) + x


class RDN(nn.Module):
    """SFENet1 -> SFENet2 -> D x RDB (outputs of all kept) -> GFF (1x1 on the concatenation, then 3x3)
    + SFENet1's output (global residual) -> UPNet (conv + pixel shuffle) -> conv to num_out_ch.

    The official code has no mean shift and runs on [0, 255] images: the input is multiplied by ``img_range``
    and the output divided by it, so official weights work on our [0, 1] images with the default 255
    (``img_range=1`` gives the bare official function).

    Args:
        num_in_ch / num_out_ch: image channels (``n_colors``).
        num_feat: G0, channels between blocks (64).
        num_block: D, residual dense blocks (16 for config B of the paper, 20 for config A).
        num_conv: C, dense layers per block (8 for B, 6 for A).
        num_grow_ch: G, growth rate (64 for B, 32 for A).
        upscale: 2, 3 or 4 (others raise ``ValueError``).
        img_range: the intensity range the weights were trained on (255).

    State-dict keys (official names): ``SFENet1``, ``SFENet2``, ``RDBs.{d}.convs.{m}.conv.0``, ``RDBs.{d}.LFF``,
    ``GFF.0`` (1x1, D*G0 -> G0), ``GFF.1`` (3x3), and ``UPNet.0`` (G0 -> G*r^2), ``UPNet.2`` (G -> num_out_ch) for
    x2/x3, or ``UPNet.0`` (G0 -> 4G), ``UPNet.2`` (G -> 4G), ``UPNet.4`` (G -> num_out_ch) for x4. All convs have
    biases; PyTorch's default initialisation (as the official code).

    Shapes: (N, num_in_ch, H, W) -> (N, num_out_ch, H*upscale, W*upscale); values in [0, 1] (not clamped).
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        num_conv: int = 8,
        num_grow_ch: int = 64,
        upscale: int = 4,
        img_range: float = 255.0,
    ) -> None:
        super().__init__()
        if upscale not in (2, 3, 4):
            raise ValueError(f"RDN upscale must be 2, 3 or 4, got {upscale}")
        if num_block < 1 or num_conv < 1:
            raise ValueError(f"RDN needs num_block >= 1 and num_conv >= 1, got {num_block}, {num_conv}")
        self.upscale = upscale
        self.img_range = img_range
        G0, G = num_feat, num_grow_ch

        self.SFENet1 = nn.Conv2d(num_in_ch, G0, 3, padding=1, stride=1)
        self.SFENet2 = nn.Conv2d(G0, G0, 3, padding=1, stride=1)
        self.RDBs = nn.ModuleList(RDB(G0, G, num_conv) for _ in range(num_block))
        self.GFF = nn.Sequential(
            nn.Conv2d(num_block * G0, G0, 1, padding=0, stride=1),
            nn.Conv2d(G0, G0, 3, padding=1, stride=1),
        )
        if upscale == 4:
            self.UPNet = nn.Sequential(
                nn.Conv2d(G0, G * 4, 3, padding=1, stride=1),
                nn.PixelShuffle(2),
                nn.Conv2d(G, G * 4, 3, padding=1, stride=1),
                nn.PixelShuffle(2),
                nn.Conv2d(G, num_out_ch, 3, padding=1, stride=1),
            )
        else:
            self.UPNet = nn.Sequential(
                nn.Conv2d(G0, G * upscale * upscale, 3, padding=1, stride=1),
                nn.PixelShuffle(upscale),
                nn.Conv2d(G, num_out_ch, 3, padding=1, stride=1),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f_minus1 = self.SFENet1(x * self.img_range)
        feat = self.SFENet2(f_minus1)
        block_outs = []
        for rdb in self.RDBs:
            feat = rdb(feat)
            block_outs.append(feat)
        feat = self.GFF(torch.cat(block_outs, 1)) + f_minus1
        return self.UPNet(feat) / self.img_range
