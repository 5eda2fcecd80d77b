"""SRCNN / FSRCNN / ESPCN: output shapes, the papers' weight counts, argument checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from src.archs import ESPCN, FSRCNN, SRCNN


def _weight_count(model: nn.Module) -> int:
    """Convolution / deconvolution weights only (no biases, no PReLU slopes), as the papers count."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))


# --- weight counts from the papers -------------------------------------------------------------------------
def test_srcnn_955_weight_count():
    # Dong et al. TPAMI 2016: 9x9x64 + 64x5x5x32 + 32x5x5 = 5184 + 51200 + 800
    assert _weight_count(SRCNN(1, 1, kernel_sizes=(9, 5, 5))) == 57_184


def test_srcnn_915_weight_count():
    # 9-1-5: 5184 + 64x32 + 800
    assert _weight_count(SRCNN(1, 1, kernel_sizes=(9, 1, 5))) == 8_032


def test_fsrcnn_weight_count():
    # Dong et al. ECCV 2016, FSRCNN(56, 12, 4): 25d + sd + 9 m s^2 + ds + 81d
    assert _weight_count(FSRCNN(1, 1, upscale=3, d=56, s=12, m=4)) == 12_464


def test_fsrcnn_weight_count_independent_of_scale():
    assert {_weight_count(FSRCNN(1, 1, upscale=r)) for r in (2, 3, 4)} == {12_464}


def test_espcn_weight_count():
    # 5x5x64 + 64x3x3x32 + 32x3x3x(3^2)
    assert _weight_count(ESPCN(1, 1, upscale=3)) == 1600 + 18432 + 2592 == 22_624


def test_prelu_and_bias_counts_fsrcnn():
    model = FSRCNN(1, 1, upscale=4)
    prelu = sum(p.numel() for m in model.modules() if isinstance(m, nn.PReLU) for p in m.parameters())
    assert prelu == 56 + 12 + 4 * 12 + 56
    total = sum(p.numel() for p in model.parameters())
    biases = 56 + 12 + 4 * 12 + 56 + 1
    assert total == 12_464 + prelu + biases


# --- shapes ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("hw", [(16, 16), (17, 23)])
def test_espcn_shape(scale, hw):
    h, w = hw
    model = ESPCN(3, 3, upscale=scale).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, h, w))
    assert out.shape == (2, 3, h * scale, w * scale)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("hw", [(16, 16), (17, 23)])
def test_fsrcnn_output_is_exactly_h_times_r(scale, hw):
    h, w = hw
    model = FSRCNN(1, 1, upscale=scale).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, h, w))
    assert out.shape == (1, 1, h * scale, w * scale)


def test_fsrcnn_rgb_shape():
    with torch.no_grad():
        out = FSRCNN(3, 3, upscale=2, d=8, s=4, m=1)(torch.rand(1, 3, 5, 7))
    assert out.shape == (1, 3, 10, 14)


@pytest.mark.parametrize("ks", [(9, 5, 5), (9, 1, 5), (3, 3, 3)])
@pytest.mark.parametrize("hw", [(17, 23), (32, 32)])
def test_srcnn_keeps_size(ks, hw):
    model = SRCNN(3, 3, kernel_sizes=ks).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, *hw))
    assert out.shape == (2, 3, *hw)


def test_espcn_pixel_shuffle_places_subpixels():
    """With conv3 emitting a constant per output channel, the shuffle puts channel k at sub-pixel k."""
    r = 3
    model = ESPCN(1, 1, upscale=r)
    with torch.no_grad():
        model.conv3.weight.zero_()
        model.conv3.bias.copy_(torch.arange(r * r, dtype=torch.float32))
        out = model(torch.rand(1, 1, 4, 5))
    expected = torch.arange(r * r, dtype=torch.float32).view(r, r).repeat(4, 5)
    assert torch.equal(out[0, 0], expected)


def test_fsrcnn_deconv_init_is_small():
    torch.manual_seed(0)
    model = FSRCNN(1, 1, upscale=3)
    std = model.deconv.weight.std().item()
    assert 0.0005 < std < 0.002
    assert model.deconv.bias.abs().sum().item() == 0.0


# --- argument checks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("ks", [(9, 4, 5), (8, 5, 5), (9, 5, 6), (9, 5), (9, 5, 5, 5), (9, 0, 5)])
def test_srcnn_bad_kernel_sizes(ks):
    with pytest.raises(ValueError, match="kernel_sizes"):
        SRCNN(kernel_sizes=ks)


@pytest.mark.parametrize("upscale", [0, -2])
def test_espcn_bad_upscale(upscale):
    with pytest.raises(ValueError, match="upscale"):
        ESPCN(upscale=upscale)


@pytest.mark.parametrize("kwargs", [{"upscale": 0}, {"d": 0}, {"s": 0}, {"m": -1}])
def test_fsrcnn_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        FSRCNN(**kwargs)
