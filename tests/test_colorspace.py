"""MATLAB rgb2ycbcr on float images: roundtrip, known values, agreement with the metrics' Y."""

from __future__ import annotations

import pytest
import torch

from src import metrics
from src.imaging.colorspace import rgb_to_y_bt601_studio, rgb_to_ycbcr, ycbcr_to_rgb


@pytest.mark.parametrize("shape", [(3, 8, 9), (2, 3, 5, 7), (2, 2, 3, 4, 4)])
def test_roundtrip(shape):
    gen = torch.Generator().manual_seed(0)
    rgb = torch.rand(shape, generator=gen)
    ycc = rgb_to_ycbcr(rgb)
    assert ycc.shape == rgb.shape
    back = ycbcr_to_rgb(ycc)
    assert back.shape == rgb.shape and back.dtype == rgb.dtype
    assert torch.allclose(back, rgb, atol=1e-5, rtol=0)
    # and the other way round
    assert torch.allclose(rgb_to_ycbcr(ycbcr_to_rgb(ycc)), ycc, atol=1e-5, rtol=0)


def test_batched_equals_unbatched():
    gen = torch.Generator().manual_seed(1)
    rgb = torch.rand(4, 3, 6, 5, generator=gen)
    batched = rgb_to_ycbcr(rgb)
    for i in range(4):
        assert torch.allclose(batched[i], rgb_to_ycbcr(rgb[i]), atol=1e-7, rtol=0)


@pytest.mark.parametrize(
    ("rgb", "ycbcr"),
    [
        ((1.0, 1.0, 1.0), (235.0, 128.0, 128.0)),
        ((0.0, 0.0, 0.0), (16.0, 128.0, 128.0)),
        # primaries: MATLAB rgb2ycbcr of pure red/green/blue
        ((1.0, 0.0, 0.0), (16 + 65.481, 128 - 37.797, 128 + 112.0)),
        ((0.0, 1.0, 0.0), (16 + 128.553, 128 - 74.203, 128 - 93.786)),
        ((0.0, 0.0, 1.0), (16 + 24.966, 128 + 112.0, 128 - 18.214)),
    ],
)
def test_known_values(rgb, ycbcr):
    img = torch.tensor(rgb, dtype=torch.float64).view(3, 1, 1).expand(3, 2, 2)
    out = rgb_to_ycbcr(img)
    expected = torch.tensor(ycbcr, dtype=torch.float64).view(3, 1, 1) / 255.0
    assert torch.allclose(out, expected.expand(3, 2, 2), atol=1e-12, rtol=0)


def test_white_and_black_luma():
    white = torch.ones(1, 3, 2, 2)
    black = torch.zeros(1, 3, 2, 2)
    assert rgb_to_y_bt601_studio(white).shape == (1, 1, 2, 2)
    assert torch.allclose(rgb_to_y_bt601_studio(white), torch.full((1, 1, 2, 2), 235 / 255), atol=1e-6)
    assert torch.allclose(rgb_to_y_bt601_studio(black), torch.full((1, 1, 2, 2), 16 / 255), atol=1e-7)


def test_ranges_on_random_images():
    rgb = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ycc = rgb_to_ycbcr(rgb)
    assert ycc[:, 0].min() >= 16 / 255 and ycc[:, 0].max() <= 235 / 255
    assert ycc[:, 1:].min() >= 16 / 255 and ycc[:, 1:].max() <= 240 / 255


def test_gray_has_neutral_chroma():
    v = torch.rand(1, 5, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ycc = rgb_to_ycbcr(v.expand(3, 5, 5))
    assert torch.allclose(ycc[1:], torch.full_like(ycc[1:], 128 / 255), atol=1e-12)
    assert torch.allclose(ycc[0], 16 / 255 + v[0] * 219 / 255, atol=1e-12)


def test_y_matches_metrics_y():
    gen = torch.Generator().manual_seed(4)
    u8 = torch.randint(0, 256, (3, 12, 10), generator=gen)
    x = u8.double() / 255.0
    ours = rgb_to_y_bt601_studio(x)[0] * 255.0
    theirs = metrics.quantized_y(metrics.quantize(x), rounding=False)
    assert theirs.shape == ours.shape == (12, 10)
    assert torch.allclose(ours, theirs, atol=1e-9, rtol=0)
    # float32 input agrees to float32 precision
    ours32 = rgb_to_y_bt601_studio(x.float())[0].double() * 255.0
    assert torch.allclose(ours32, theirs, atol=1e-3, rtol=0)


def test_wrong_channel_count_raises():
    with pytest.raises(ValueError, match="3 channels"):
        rgb_to_ycbcr(torch.rand(4, 5, 5))
    with pytest.raises(ValueError, match="3 channels"):
        ycbcr_to_rgb(torch.rand(1, 1, 5, 5))
