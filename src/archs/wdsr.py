"""WDSR-A and WDSR-B (Yu et al., "Wide Activation for Efficient and Accurate Image Super-Resolution", 2018).

Key names of the official code (JiahuiYu/wdsr_ntire2018, ``wdsr_a.py``/``wdsr_b.py``): weight-normalised convs
store ``weight_g`` (Cout, 1, 1, 1), ``weight_v`` and ``bias``, as ``torch.nn.utils.weight_norm`` wrote them.
:class:`WNConv2d` is an own module rather than ``torch.nn.utils.parametrizations.weight_norm`` because the
latter names its tensors ``parametrizations.weight.original0/1`` (not the official keys) and its parametrization
hooks do not survive ``torch.jit.script``; the computation is the same (w = g · v / ‖v‖ per output channel).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class WNConv2d(nn.Module):
    """A conv with weight normalisation: parameters ``weight_g`` (Cout, 1, 1, 1), ``weight_v`` (Cout, Cin, k, k)
    and ``bias``; "same" padding. Initialised as PyTorch's Conv2d, with g = ‖v‖ (so w = v at the start)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int) -> None:
        super().__init__()
        conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)
        self.padding = kernel_size // 2
        self.weight_v = nn.Parameter(conv.weight.detach().clone())
        self.weight_g = nn.Parameter(torch.linalg.vector_norm(conv.weight.detach(), dim=(1, 2, 3), keepdim=True))
        self.bias = nn.Parameter(conv.bias.detach().clone())

    def normalized_weight(self) -> torch.Tensor:
        v = self.weight_v
        return v * (self.weight_g / torch.linalg.vector_norm(v, dim=(1, 2, 3), keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.normalized_weight(), self.bias, padding=self.padding)


class BlockA(nn.Module):
    """Wide activation: WN conv3x3 n -> block_feats, ReLU, WN conv3x3 -> n; ``x + res_scale·body(x)``."""

    def __init__(self, num_feat: int, block_feats: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.body = nn.Sequential(
            WNConv2d(num_feat, block_feats, 3), nn.ReLU(inplace=True), WNConv2d(block_feats, num_feat, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class BlockB(nn.Module):
    """Wider activation with linear low-rank convs: WN 1x1 n -> n·expand, ReLU, WN 1x1 -> int(n·linear),
    WN 3x3 -> n; ``x + res_scale·body(x)`` (keys ``body.0``, ``body.2``, ``body.3``)."""

    def __init__(self, num_feat: int, expand: int = 6, linear: float = 0.8, res_scale: float = 1.0) -> None:
        super().__init__()
        self.res_scale = res_scale
        low = int(num_feat * linear)
        self.body = nn.Sequential(
            WNConv2d(num_feat, num_feat * expand, 1),
            nn.ReLU(inplace=True),
            WNConv2d(num_feat * expand, low, 1),
            WNConv2d(low, num_feat, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class _WDSR(nn.Module):
    def __init__(self, blocks: list[nn.Module], num_colors: int, num_feat: int, upscale: int,
                 rgb_mean: Sequence[float]) -> None:
        super().__init__()
        out_feats = upscale * upscale * num_colors
        self.upscale = upscale
        self.register_buffer("mean", torch.tensor([float(v) for v in rgb_mean]).view(1, -1, 1, 1), persistent=False)
        self.head = nn.Sequential(WNConv2d(num_colors, num_feat, 3))
        self.body = nn.Sequential(*blocks)
        self.tail = nn.Sequential(WNConv2d(num_feat, out_feats, 3), nn.PixelShuffle(upscale))
        self.skip = nn.Sequential(WNConv2d(num_colors, out_feats, 5), nn.PixelShuffle(upscale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean.to(x.dtype)
        x = (x - mean) * 2.0  # official: (x·255 − mean·255) / 127.5
        out = self.tail(self.body(self.head(x))) + self.skip(x)
        return out * 0.5 + mean


class WDSRA(_WDSR):
    """WDSR-A: head WN conv3x3 -> ``num_block`` wide-activation blocks -> tail WN conv3x3 + pixel shuffle, plus
    the global skip branch WN conv5x5 + pixel shuffle on the (normalised) input; no global residual conv.

    Args:
        num_colors: 3. num_feat: trunk width (32). block_feats: width inside the blocks (128: x4 expansion).
        num_block: 16 (the "WDSR baseline" of the official README, 1,190,100 parameters at x2).
        res_scale: 1. upscale: 2, 3, 4. rgb_mean: DIV2K mean in [0, 1].

    Shapes: (N, 3, H, W) in [0, 1] -> (N, 3, H*upscale, W*upscale), not clamped.
    """

    def __init__(self, num_colors: int = 3, num_feat: int = 32, block_feats: int = 128, num_block: int = 16,
                 upscale: int = 4, res_scale: float = 1.0, rgb_mean: Sequence[float] = DIV2K_RGB_MEAN) -> None:
        blocks = [BlockA(num_feat, block_feats, res_scale) for _ in range(num_block)]
        super().__init__(blocks, num_colors, num_feat, upscale, rgb_mean)


class WDSRB(_WDSR):
    """WDSR-B: as :class:`WDSRA` with :class:`BlockB` (expand x6 with 1x1 convs, linear low-rank 0.8).

    Default ``num_feat=64``: the official README compares WDSR-A (32 features, 128 in the blocks) and WDSR-B at
    equal parameter budgets (0.08M / 0.23M / 0.37M / 0.60M at 1 / 3 / 5 / 8 blocks), which WDSR-B reaches with 64.
    """

    def __init__(self, num_colors: int = 3, num_feat: int = 64, num_block: int = 16, upscale: int = 4,
                 expand: int = 6, linear: float = 0.8, res_scale: float = 1.0,
                 rgb_mean: Sequence[float] = DIV2K_RGB_MEAN) -> None:
        blocks = [BlockB(num_feat, expand, linear, res_scale) for _ in range(num_block)]
        super().__init__(blocks, num_colors, num_feat, upscale, rgb_mean)
