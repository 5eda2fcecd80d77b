"""NIQE: the MATLAB reference value on Set14 baboon, and invariants that need no reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from src.degradations.resize import imresize
from src.metrics.niqe import (
    _aggd_table,
    estimate_aggd,
    load_pristine_params,
    nearest_in_table,
    niqe,
    niqe_features,
)


def _texture(h: int = 200, w: int = 200, seed: int = 0) -> torch.Tensor:
    """A gray (1, H, W) image in [0, 1] with some structure: upscaled noise plus an edge."""
    g = torch.Generator().manual_seed(seed)
    x = imresize(torch.rand(1, 1, h // 4, w // 4, generator=g, dtype=torch.float64), size=(h, w))[0]
    x = x + 0.05 * torch.randn(1, h, w, generator=g, dtype=torch.float64)
    x[:, :, w // 2 :] += 0.2
    return x.clamp(0, 1)


@pytest.fixture(scope="module")
def baboon(benchmarks_root):
    from src.data.image_io import load_image

    return load_image(benchmarks_root / "Set14" / "HR" / "baboon.png")


def test_baboon_matches_matlab(baboon):
    # MATLAB (niqe_release computequality.m on the uint8 Y of rgb2ycbcr, 96x96 blocks): 5.72957
    assert niqe(baboon, crop_border=0) == pytest.approx(5.7296, abs=1e-3)


def test_crop_border_changes_little(baboon):
    base = niqe(baboon, 0)
    for border in (2, 4):
        assert abs(niqe(baboon, border) - base) < 0.5


def test_blur_raises_niqe(baboon):
    blurred = imresize(imresize(baboon, scale=0.25), size=tuple(baboon.shape[-2:])).clamp(0, 1)
    assert niqe(blurred) > niqe(baboon) + 1.0


def test_pristine_params_match_shared_mat(shared_root):
    import scipy.io

    mat = scipy.io.loadmat(str(shared_root / "weights" / "niqe_modelparameters.mat"))
    mu, cov = load_pristine_params()
    np.testing.assert_array_equal(mu.numpy(), mat["mu_prisparam"].reshape(-1))
    np.testing.assert_array_equal(cov.numpy(), mat["cov_prisparam"])


def test_gray_and_rgb_of_same_gray_image_agree():
    gray = _texture()
    for convert_to in ("y", "gray"):
        assert niqe(gray, convert_to=convert_to) == niqe(gray.expand(3, -1, -1), convert_to=convert_to)


def _pink_noise(n: int = 288, seed: int = 0) -> torch.Tensor:
    """Gray (1, n, n) 1/f noise in [0, 1]: natural-image-like spectrum, no data file needed."""
    g = torch.Generator().manual_seed(seed)
    fy, fx = torch.fft.fftfreq(n).unsqueeze(1), torch.fft.fftfreq(n).unsqueeze(0)
    f = torch.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    x = torch.fft.ifft2(torch.fft.fft2(torch.randn(n, n, generator=g, dtype=torch.float64)) / f).real
    return ((x - x.mean()) / x.std() * 0.18 + 0.5).clamp(0, 1).unsqueeze(0)


def test_blur_raises_niqe_synthetic():
    img = _pink_noise()
    blurred = imresize(imresize(img, scale=0.25), size=(288, 288)).clamp(0, 1)
    assert niqe(blurred) > niqe(img) + 1.0


def test_too_small_image_names_block_size():
    with pytest.raises(ValueError, match="96x96"):
        niqe(torch.rand(3, 95, 300))
    with pytest.raises(ValueError, match="96x96"):
        niqe(torch.rand(3, 100, 100), crop_border=4)  # 92x92 left
    assert np.isfinite(niqe(_texture(96, 96)))  # one block is enough (MATLAB: variance of a vector)


def test_features_shape_and_bad_input():
    y = _texture(192, 288)[0] * 255.0
    feats = niqe_features(torch.floor(y + 0.5))
    assert feats.shape == (2 * 3, 36)
    with pytest.raises(ValueError, match="channels|tensor"):
        niqe(torch.rand(2, 100, 100))


def test_nearest_in_table_is_matlab_min():
    _, r_gam = _aggd_table()
    g = torch.Generator().manual_seed(0)
    values = torch.cat(
        [
            torch.rand(5000, generator=g, dtype=torch.float64) * 0.9,
            r_gam[::37],
            (r_gam[1:200] + r_gam[:199]) / 2,
            torch.tensor([float("nan"), -1.0, 3.0], dtype=torch.float64),
        ]
    )
    brute = ((r_gam.unsqueeze(0) - values.unsqueeze(1)) ** 2).argmin(dim=1)
    brute = torch.where(torch.isnan(values), torch.zeros_like(brute), brute)  # MATLAB min: index 1 for all-NaN
    assert torch.equal(nearest_in_table(values, r_gam), brute)
    dec = r_gam.flip(0)
    brute_dec = torch.where(torch.isnan(values), 0, ((dec.unsqueeze(0) - values.unsqueeze(1)).abs()).argmin(dim=1))
    assert torch.equal(nearest_in_table(values, dec), brute_dec)


def test_aggd_recovers_gaussian_shape():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 200_000, generator=g, dtype=torch.float64) * 2.0
    alpha, betal, betar = estimate_aggd(x)
    assert alpha.item() == pytest.approx(2.0, abs=0.05)
    # for a Gaussian, beta = sigma * sqrt(gamma(1/2) / gamma(3/2)) = sigma * sqrt(2)
    assert betal.item() == pytest.approx(2.0 * 2**0.5, rel=0.02)
    assert betar.item() == pytest.approx(2.0 * 2**0.5, rel=0.02)
    # no negative samples: left spread undefined (NaN) and alpha from MATLAB min's NaN rule
    alpha, betal, _ = estimate_aggd(x.abs())
    assert torch.isnan(betal).all() and alpha.item() == pytest.approx(0.2)
