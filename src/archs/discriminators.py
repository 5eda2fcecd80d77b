"""GAN discriminators: SRGAN's own (``SRGANDiscriminator``, Ledig et al. 2017, Fig. 4), BasicSR's
``VGGStyleDiscriminator`` (ESRGAN) and Real-ESRGAN's ``UNetDiscriminatorSN``. The last two have the same
constructors, state-dict keys and numerics as BasicSR / Real-ESRGAN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from src.archs.blocks import upsample2x_bilinear


class SRGANDiscriminator(nn.Module):
    """SRGAN's discriminator as the paper draws it (Ledig et al., CVPR 2017, Fig. 4), one logit per image.

    Eight 3x3 convolutions k3n64s1, k3n64s2, k3n128s1, k3n128s2, k3n256s1, k3n256s2, k3n512s1, k3n512s2
    (widths ``num_feat`` x 1, 1, 2, 2, 4, 4, 8, 8; padding 1, so every stride-2 convolution halves the side),
    LeakyReLU(0.2) after each, batch norm after every convolution but the first; then Dense(1024), LeakyReLU(0.2),
    Dense(1). The paper's final sigmoid is left to the loss (a logit for BCE-with-logits, as the GAN criteria
    in ``src.losses.adversarial`` expect). The first convolution has a bias; the others are followed by batch
    norm, whose shift makes a bias redundant, so they have none.

    Args:
        num_in_ch: image channels.
        num_feat: width of the first two convolutions (the paper's 64).
        input_size: side of the square HR patches (the paper's 96), a multiple of 16; ``dense1`` gets
            ``8 * num_feat * (input_size / 16)**2`` inputs (18,432 for 96 px patches).

    State-dict keys: ``conv0`` (weight, bias), ``conv1 … conv7`` (weight), ``bn1 … bn7``, ``dense1``, ``dense2``.

    Shapes: (N, num_in_ch, input_size, input_size) -> (N, 1) logits.
    """

    def __init__(self, num_in_ch: int, num_feat: int = 64, input_size: int = 96) -> None:
        super().__init__()
        if input_size % 16 or input_size < 16:
            raise ValueError(f"SRGANDiscriminator input_size must be a positive multiple of 16, got {input_size}")
        self.input_size = input_size
        widths = [num_feat * m for m in (1, 1, 2, 2, 4, 4, 8, 8)]
        c_in = num_in_ch
        for k, c_out in enumerate(widths):
            stride = 2 if k % 2 else 1
            setattr(self, f"conv{k}", nn.Conv2d(c_in, c_out, 3, stride, 1, bias=k == 0))
            if k:
                setattr(self, f"bn{k}", nn.BatchNorm2d(c_out))
            c_in = c_out
        self.num_convs = len(widths)
        side = input_size // 16
        self.dense1 = nn.Linear(widths[-1] * side * side, 1024)
        self.dense2 = nn.Linear(1024, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"SRGANDiscriminator expects {self.input_size}x{self.input_size} inputs, got {tuple(x.shape)}"
            )
        feat = self.lrelu(self.conv0(x))
        for k in range(1, self.num_convs):
            feat = self.lrelu(getattr(self, f"bn{k}")(getattr(self, f"conv{k}")(feat)))
        feat = torch.flatten(feat, 1)  # (N, C*s*s) in C, H, W order, also for channels_last inputs
        return self.dense2(self.lrelu(self.dense1(feat)))


class VGGStyleDiscriminator(nn.Module):
    """VGG-style classifier for square patches, one logit per image (no sigmoid).

    Five (six for 256) stages of [conv 3x3 stride 1, conv 4x4 stride 2], channels
    num_feat, 2, 4, 8, 8 (, 8) x num_feat; batch norm after every conv except ``conv0_0`` (the only conv with a
    bias); LeakyReLU 0.2; then ``linear1`` (num_feat*8*s*s -> 100, s = 4 for 128/256 inputs), LeakyReLU,
    ``linear2`` (100 -> 1).

    Args:
        num_in_ch: image channels.
        num_feat: channels of the first stage (64).
        input_size: 128 or 256 (BasicSR's two layouts), or another multiple of 32 with five stages
            (e.g. 96 for SRGAN's patches, 192 for ESRGAN-Pro's; only ``linear1``'s input width changes);
            inputs must be exactly this size.

    State-dict keys: ``conv0_0.{weight,bias}``, ``conv0_1``, ``bn0_1``, ``conv{k}_{0,1}``, ``bn{k}_{0,1}`` for
    k = 1 … 4 (… 5 for 256), ``linear1``, ``linear2``.

    Shapes: (N, num_in_ch, input_size, input_size) -> (N, 1) logits.
    """

    def __init__(self, num_in_ch: int, num_feat: int, input_size: int = 128) -> None:
        super().__init__()
        if input_size != 256 and (input_size % 32 or input_size < 32):
            raise ValueError(f"VGGStyleDiscriminator input_size must be a multiple of 32, got {input_size}")
        self.input_size = input_size
        widths = [num_feat, num_feat * 2, num_feat * 4, num_feat * 8, num_feat * 8]
        if input_size == 256:
            widths.append(num_feat * 8)
        self.conv0_0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(num_feat, num_feat, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(num_feat, affine=True)
        for k in range(1, len(widths)):
            c_in, c_out = widths[k - 1], widths[k]
            setattr(self, f"conv{k}_0", nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False))
            setattr(self, f"bn{k}_0", nn.BatchNorm2d(c_out, affine=True))
            setattr(self, f"conv{k}_1", nn.Conv2d(c_out, c_out, 4, 2, 1, bias=False))
            setattr(self, f"bn{k}_1", nn.BatchNorm2d(c_out, affine=True))
        self.num_stages = len(widths)
        side = input_size // 2 ** len(widths)  # 4 for BasicSR's 128 and 256
        self.linear1 = nn.Linear(num_feat * 8 * side * side, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"VGGStyleDiscriminator expects {self.input_size}x{self.input_size} inputs, got {tuple(x.shape)}"
            )
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for k in range(1, self.num_stages):
            feat = self.lrelu(getattr(self, f"bn{k}_0")(getattr(self, f"conv{k}_0")(feat)))
            feat = self.lrelu(getattr(self, f"bn{k}_1")(getattr(self, f"conv{k}_1")(feat)))
        feat = torch.flatten(feat, 1)  # (N, C*s*s) in C, H, W order, also for channels_last inputs
        return self.linear2(self.lrelu(self.linear1(feat)))


class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's U-Net discriminator with spectral normalisation: one logit per pixel.

    conv0 (3x3) -> 3 x down (4x4 stride 2, SN) -> 3 x [bilinear x2, conv 3x3 (SN), + skip] -> conv7, conv8 (3x3,
    SN) -> conv9 (3x3 -> 1). LeakyReLU 0.2 after every conv but the last. ``conv0`` and ``conv9`` have biases and
    no spectral norm; ``conv1 … conv8`` are bias-free and wrapped in ``torch.nn.utils.spectral_norm`` (one power
    iteration per training-mode forward, updating ``weight_u`` / ``weight_v``; eval mode reuses them).

    Args:
        num_in_ch: image channels.
        num_feat: channels of the first level (64).
        skip_connection: add the encoder features to the decoder ones (True in Real-ESRGAN).

    State-dict keys: ``conv0.{weight,bias}``, ``conv{1..8}.{weight_orig,weight_u,weight_v}``,
    ``conv9.{weight,bias}`` (as in the official ``RealESRGAN_x4plus_netD.pth``).

    Shapes: (N, num_in_ch, H, W) -> (N, 1, H, W); H and W must be multiples of 8.
    """

    def __init__(self, num_in_ch: int, num_feat: int = 64, skip_connection: bool = True) -> None:
        super().__init__()
        self.skip_connection = skip_connection
        self.conv0 = nn.Conv2d(num_in_ch, num_feat, kernel_size=3, stride=1, padding=1)
        self.conv1 = spectral_norm(nn.Conv2d(num_feat, num_feat * 2, 4, 2, 1, bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(num_feat * 2, num_feat * 4, 4, 2, 1, bias=False))
        self.conv3 = spectral_norm(nn.Conv2d(num_feat * 4, num_feat * 8, 4, 2, 1, bias=False))
        self.conv4 = spectral_norm(nn.Conv2d(num_feat * 8, num_feat * 4, 3, 1, 1, bias=False))
        self.conv5 = spectral_norm(nn.Conv2d(num_feat * 4, num_feat * 2, 3, 1, 1, bias=False))
        self.conv6 = spectral_norm(nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1, bias=False))
        self.conv7 = spectral_norm(nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(num_feat, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f"UNetDiscriminatorSN needs H and W divisible by 8, got {tuple(x.shape[-2:])}")

        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, negative_slope=0.2, inplace=True)

        up = upsample2x_bilinear  # F.interpolate bilinear x2; deterministic backward under deterministic mode

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))

        x4 = act(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0

        out = act(self.conv7(x6))
        out = act(self.conv8(out))
        return self.conv9(out)
