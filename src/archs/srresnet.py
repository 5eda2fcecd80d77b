"""SRResNet generators: BasicSR's ``MSRResNet`` (no batch norm) and the SRGAN paper's ``SRResNet``.

``MSRResNet`` has the same constructor, state-dict keys and numerics as ``basicsr/archs/srresnet_arch.py``.
``SRResNet`` follows Ledig et al., CVPR 2017 (Fig. 4); its key names are ours and listed in the class docstring.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from src.archs.blocks import ResidualBlockNoBN, default_init_weights, is_power_of_two, make_layer


class MSRResNet(nn.Module):
    """Modified SRResNet (BasicSR): conv_first + LeakyReLU -> body (num_block x ResidualBlockNoBN) -> pixel-shuffle
    upsampling (LeakyReLU 0.1) -> conv_hr + LeakyReLU -> conv_last, plus the bilinearly upsampled input.

    There is no long skip over the body and no batch norm. Every conv is Kaiming-initialised and scaled by 0.1.

    Args:
        num_in_ch / num_out_ch: image channels (the bilinear base needs ``num_in_ch`` equal to ``num_out_ch``
            or 1).
        num_feat: trunk channels (64).
        num_block: residual blocks (16).
        upscale: 2, 3 (one ``upconv1`` + pixel shuffle by the scale) or 4 (``upconv1`` and ``upconv2``, each
            followed by a pixel shuffle by 2). Others raise ``ValueError``.

    State-dict keys: ``conv_first``, ``body.{i}.conv1``, ``body.{i}.conv2``, ``upconv1``, ``upconv2`` (x4 only),
    ``conv_hr``, ``conv_last``.

    Shapes: (N, num_in_ch, H, W) -> (N, num_out_ch, H*upscale, W*upscale); values in [0, 1] (not clamped).
    """

    def __init__(
        self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16, upscale: int = 4
    ) -> None:
        super().__init__()
        if upscale not in (2, 3, 4):
            raise ValueError(f"MSRResNet upscale must be 2, 3 or 4, got {upscale}")
        if num_in_ch not in (1, num_out_ch):
            raise ValueError(
                f"MSRResNet adds the upsampled input to the output: num_in_ch ({num_in_ch}) must equal "
                f"num_out_ch ({num_out_ch}) or be 1"
            )
        self.upscale = upscale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = make_layer(ResidualBlockNoBN, num_block, num_feat=num_feat)
        if upscale == 4:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(2)
        else:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * upscale * upscale, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(upscale)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

        default_init_weights([self.conv_first, self.upconv1, self.conv_hr, self.conv_last], 0.1)
        if upscale == 4:
            default_init_weights(self.upconv2, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.lrelu(self.conv_first(x))
        out = self.body(feat)
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        if self.upscale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        return out + F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)


class SRResBlock(nn.Module):
    """SRGAN residual block: ``x + bn2(conv2(act(bn1(conv1(x)))))``, 3x3 convs without bias (batch norm follows),
    single-slope PReLU. Keys ``conv1``, ``bn1``, ``act``, ``conv2``, ``bn2``.

    Shapes: (N, num_feat, H, W) -> (N, num_feat, H, W).
    """

    def __init__(self, num_feat: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(num_feat)
        self.act = nn.PReLU()
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class SRResNet(nn.Module):
    """SRGAN's generator (Ledig et al., CVPR 2017, Fig. 4), with batch norm and PReLU.

    conv_first 9x9 + PReLU -> body (num_block x SRResBlock) -> conv_after_body 3x3 + BN, plus the long skip from
    after the first PReLU -> upsample (per x2 stage: conv 3x3 C -> 4C, pixel shuffle 2, PReLU; x3: one stage with
    C -> 9C and shuffle 3) -> conv_last 9x9. The output is linear (no tanh) and meant for [0, 1] images.

    Convolutions followed by batch norm have no bias (it would be absorbed by the BN shift); every other conv has
    one. Every PReLU has a single slope (``nn.PReLU()``). PyTorch's default initialisation.

    Args:
        num_in_ch / num_out_ch: image channels.
        num_feat: trunk channels (64).
        num_block: residual blocks (16).
        upscale: 2^n (n stages of x2) or 3.

    State-dict keys (``{i}`` = 0 … num_block-1; ``s`` = 0, 1, … the upsampling stage):
        ``conv_first.{weight,bias}``, ``act_first.weight``;
        ``body.{i}.conv1.weight``, ``body.{i}.bn1.{weight,bias,running_mean,running_var,num_batches_tracked}``,
        ``body.{i}.act.weight``, ``body.{i}.conv2.weight``, ``body.{i}.bn2.*``;
        ``conv_after_body.weight``, ``bn_after_body.*``;
        ``upsample.{3s}.{weight,bias}`` (conv), ``upsample.{3s+2}.weight`` (PReLU) (``upsample.{3s+1}`` is the
        parameter-free pixel shuffle) — x4: ``upsample.0``, ``upsample.2``, ``upsample.3``, ``upsample.5``;
        ``conv_last.{weight,bias}``.
    To import weights whose BN-preceded convs have a bias b, fold it into the BN: ``running_mean -= b``.

    Shapes: (N, num_in_ch, H, W) -> (N, num_out_ch, H*upscale, W*upscale); values in [0, 1] (not clamped).
    """

    def __init__(
        self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16, upscale: int = 4
    ) -> None:
        super().__init__()
        if not (is_power_of_two(upscale) or upscale == 3):
            raise ValueError(f"SRResNet upscale must be a power of two or 3, got {upscale}")
        self.upscale = upscale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 9, 1, 4)
        self.act_first = nn.PReLU()
        self.body = make_layer(SRResBlock, num_block, num_feat=num_feat)
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False)
        self.bn_after_body = nn.BatchNorm2d(num_feat)
        stages = [3] if upscale == 3 else [2] * (upscale.bit_length() - 1)
        layers: list[nn.Module] = []
        for r in stages:
            layers += [nn.Conv2d(num_feat, num_feat * r * r, 3, 1, 1), nn.PixelShuffle(r), nn.PReLU()]
        self.upsample = nn.Sequential(*layers)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 9, 1, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.act_first(self.conv_first(x))
        res = self.bn_after_body(self.conv_after_body(self.body(feat))) + feat
        return self.conv_last(self.upsample(res))
