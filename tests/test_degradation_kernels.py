"""Blur kernels: Real-ESRGAN's formulas (checked against kernels made by its own code), properties, sampling."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from src.degradations import kernels as K

REF = Path(__file__).resolve().parent / "data" / "realesrgan_reference" / "kernels.pt"
OURS = {
    "bivariate_Gaussian": K.bivariate_gaussian,
    "bivariate_generalized_Gaussian": K.bivariate_generalized_gaussian,
    "bivariate_plateau": K.bivariate_plateau,
    "circular_lowpass_kernel": K.circular_lowpass_kernel,
}


# ---- the reference ----------------------------------------------------------------------------------------------
def test_reference_file_is_small_and_covers_every_function():
    assert REF.stat().st_size < 200 * 1024
    ref = torch.load(REF, weights_only=True)
    assert {c["fn"] for c in ref["cases"]} == set(OURS)
    assert {c["args"][0] for c in ref["cases"] if c["fn"] != "circular_lowpass_kernel"} == {7, 13, 21}


def test_kernels_equal_realesrgan_reference():
    """Same parameters -> the same kernel as basicsr/data/degradations.py (max |delta| <= 1e-6)."""
    ref = torch.load(REF, weights_only=True)
    for case, expected in zip(ref["cases"], ref["kernels"], strict=True):
        out = OURS[case["fn"]](*case["args"], **case["kwargs"])
        assert out.dtype == torch.float32 and out.shape == expected.shape, case
        delta = (out - expected).abs().max().item()
        assert delta <= 1e-6, f"{case}: max |delta| = {delta:.2e}"


def test_batched_build_equals_single_kernels():
    fam = torch.tensor([K.GAUSSIAN, K.GENERALIZED, K.PLATEAU, K.SINC, K.GAUSSIAN])
    sizes = torch.tensor([7, 21, 13, 11, 9])
    sx = torch.tensor([1.2, 2.0, 0.7, 1.0, 0.9], dtype=torch.float64)
    sy = torch.tensor([2.5, 0.6, 1.9, 1.0, 0.9], dtype=torch.float64)
    th = torch.tensor([0.3, -1.1, 2.0, 0.0, 0.0], dtype=torch.float64)
    beta = torch.tensor([1.0, 2.7, 1.4, 1.0, 1.0], dtype=torch.float64)
    cutoff = torch.tensor([0, 0, 0, 1.9, 0], dtype=torch.float64)
    batch = K.build_kernels(fam, sizes, sx, sy, th, beta, cutoff, pad_to=21)
    assert batch.shape == (5, 21, 21)
    singles = [
        K.bivariate_gaussian(7, 1.2, 2.5, 0.3, isotropic=False),
        K.bivariate_generalized_gaussian(21, 2.0, 0.6, -1.1, 2.7, isotropic=False),
        K.bivariate_plateau(13, 0.7, 1.9, 2.0, 1.4, isotropic=False),
        K.circular_lowpass_kernel(1.9, 11),
        K.bivariate_gaussian(9, 0.9, 0.1, 1.0, isotropic=True),
    ]
    for i, single in enumerate(singles):
        pad = (21 - single.shape[-1]) // 2
        assert torch.allclose(batch[i], torch.nn.functional.pad(single, (pad,) * 4), atol=1e-7), i


# ---- properties -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [7, 9, 13, 21])
def test_random_kernels_sum_to_one_and_stay_in_their_support(size):
    g = torch.Generator().manual_seed(size)
    k = K.random_blur_kernels(64, kernel_sizes=[size], sinc_prob=0.3, generator=g, pad_to=21)
    assert k.shape == (64, 21, 21) and torch.isfinite(k).all()
    assert torch.allclose(k.sum(dim=(1, 2)), torch.ones(64), atol=1e-5)
    outside = torch.ones(21, 21, dtype=torch.bool)
    lo, hi = 10 - size // 2, 10 + size // 2 + 1
    outside[lo:hi, lo:hi] = False
    assert k[:, outside].abs().sum() == 0


def test_isotropic_kernels_have_all_the_square_symmetries():
    for kernel in (
        K.bivariate_gaussian(13, 1.7, 0, 0),
        K.bivariate_generalized_gaussian(13, 1.7, 0, 0, 0.6),
        K.bivariate_plateau(13, 1.7, 0, 0, 1.8),
        K.circular_lowpass_kernel(1.1, 13),
    ):
        assert torch.allclose(kernel, kernel.flip(0), atol=1e-7)
        assert torch.allclose(kernel, kernel.flip(1), atol=1e-7)
        assert torch.allclose(kernel, kernel.T, atol=1e-7)


def test_anisotropic_kernels_rotation_conventions():
    k = K.bivariate_gaussian(21, 3.0, 1.0, 0.4, isotropic=False)
    assert torch.allclose(k, k.flip(0, 1), atol=1e-7)  # point symmetric
    assert torch.allclose(k, K.bivariate_gaussian(21, 3.0, 1.0, 0.4 + math.pi, isotropic=False), atol=1e-7)
    # theta = 0: sig_x along the columns (x), sig_y along the rows (y); theta = pi/2 swaps them
    k0 = K.bivariate_gaussian(21, 3.0, 1.0, 0.0, isotropic=False)
    assert k0[10, :].sum() > k0[:, 10].sum() * 2
    assert torch.allclose(K.bivariate_gaussian(21, 3.0, 1.0, math.pi / 2, isotropic=False), k0.T, atol=1e-7)
    assert torch.allclose(K.bivariate_gaussian(21, 1.0, 3.0, 0.0, isotropic=False), k0.T, atol=1e-7)


@pytest.mark.parametrize(("sig_x", "sig_y", "theta"), [(2.0, 1.2, 0.5), (1.5, 2.5, -2.0), (2.2, 2.2, 1.0)])
def test_anisotropic_gaussian_covariance(sig_x, sig_y, theta):
    """The kernel's second moments are Sigma = R diag(sig_x^2, sig_y^2) R^T (x = column, y = row)."""
    k = K.bivariate_gaussian(21, sig_x, sig_y, theta, isotropic=False).double()
    ax = torch.arange(-10, 11, dtype=torch.float64)
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    cov = torch.tensor([[(k * xx * xx).sum(), (k * xx * yy).sum()], [(k * xx * yy).sum(), (k * yy * yy).sum()]])
    c, s = math.cos(theta), math.sin(theta)
    rot = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    expected = rot @ torch.diag(torch.tensor([sig_x**2, sig_y**2], dtype=torch.float64)) @ rot.T
    assert torch.allclose(cov, expected, atol=2e-3), (cov, expected)
    assert abs((k * xx).sum()) < 1e-9 and abs((k * yy).sum()) < 1e-9


@pytest.mark.parametrize("cutoff", [math.pi / 4, math.pi / 2])
def test_sinc_kernel_is_a_circular_low_pass(cutoff):
    k = K.circular_lowpass_kernel(cutoff, 21).double()
    spectrum = torch.fft.fftshift(torch.fft.fft2(k, s=(128, 128))).abs()
    w = torch.fft.fftshift(torch.fft.fftfreq(128, dtype=torch.float64)) * 2 * math.pi
    wy, wx = torch.meshgrid(w, w, indexing="ij")
    radius = torch.sqrt(wx**2 + wy**2)
    assert spectrum[64, 64].item() == pytest.approx(1.0, abs=1e-6)  # sums to 1
    passband = spectrum[radius < 0.8 * cutoff]  # a truncated (21-tap) sinc: ripples of ~15 %
    stopband = spectrum[(radius > 1.3 * cutoff) & (radius < math.pi)]
    assert passband.min() > 0.8 and passband.mean() > 0.9
    assert stopband.max() < 0.12 and stopband.mean() < 0.03
    # circular: the response depends on the radius only (same gain along an axis and a diagonal)
    r = int(round(0.5 * cutoff / (2 * math.pi) * 128))
    axis, diag = spectrum[64, 64 + r], spectrum[64 + round(r / math.sqrt(2)), 64 + round(r / math.sqrt(2))]
    assert abs(axis - diag) < 0.15  # up to the ripples of the square truncation


def test_sinc_pad_to_centres_the_kernel():
    k = K.circular_lowpass_kernel(1.7, 9, pad_to=21)
    assert k.shape == (21, 21)
    assert torch.equal(k[6:15, 6:15], K.circular_lowpass_kernel(1.7, 9))
    assert k.sum().item() == pytest.approx(1.0, abs=1e-6)


def test_generalized_beta_one_is_gaussian_and_plateau_is_heavy_tailed():
    g = K.bivariate_gaussian(15, 1.5, 0.9, 0.7, isotropic=False)
    assert torch.allclose(K.bivariate_generalized_gaussian(15, 1.5, 0.9, 0.7, 1.0, isotropic=False), g, atol=1e-7)
    p = K.bivariate_plateau(15, 1.5, 1.5, 0, 1.0)
    assert p[0, 0] > g[0, 0] * 10  # 1 / (1 + Q) decays polynomially


def test_flush_denormal_is_restored():
    before = K._flush_denormal_active()
    K.random_blur_kernels(8, generator=torch.Generator().manual_seed(0))
    assert K._flush_denormal_active() == before
    torch.set_flush_denormal(False)
    try:
        with K.flush_denormal():
            if torch.set_flush_denormal(True):  # supported on this CPU
                assert K._flush_denormal_active()
        assert not K._flush_denormal_active()
    finally:
        torch.set_flush_denormal(before)


# ---- sampling ----------------------------------------------------------------------------------------------------
def test_mixed_sampler_follows_the_probabilities_and_ranges():
    n = 20000
    g = torch.Generator().manual_seed(0)
    probs = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
    params = K._sample_mixed(n, K.KERNEL_TYPES, probs, (0.2, 3), (0.2, 3), (-math.pi, math.pi), (0.5, 4), (1, 2), g)
    fam = params["family"]
    iso = params["theta"] == 0
    freq = {
        "gauss": (fam == K.GAUSSIAN).double().mean().item(),
        "gen": (fam == K.GENERALIZED).double().mean().item(),
        "plateau": (fam == K.PLATEAU).double().mean().item(),
    }
    assert freq["gauss"] == pytest.approx(0.70, abs=0.015)
    assert freq["gen"] == pytest.approx(0.15, abs=0.015)
    assert freq["plateau"] == pytest.approx(0.15, abs=0.015)
    assert iso.double().mean().item() == pytest.approx(0.45 + 0.12 + 0.12, abs=0.015)
    assert torch.equal(params["sig_x"][iso], params["sig_y"][iso])
    assert params["sig_x"].min() >= 0.2 and params["sig_x"].max() <= 3
    gen_beta = params["beta"][fam == K.GENERALIZED]
    assert gen_beta.min() >= 0.5 and gen_beta.max() <= 4
    assert (gen_beta < 1).double().mean().item() == pytest.approx(0.5, abs=0.03)  # half below 1, as the reference
    plateau_beta = params["beta"][fam == K.PLATEAU]
    assert plateau_beta.min() >= 1 and plateau_beta.max() <= 2


def test_random_kernels_are_reproducible_from_the_generator():
    a = K.random_mixed_kernels(16, K.KERNEL_TYPES, [1] * 6, [7, 11, 21], noise_range=(0.75, 1.25),
                               generator=torch.Generator().manual_seed(3))
    b = K.random_mixed_kernels(16, K.KERNEL_TYPES, [1] * 6, [7, 11, 21], noise_range=(0.75, 1.25),
                               generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (16, 21, 21)
    assert torch.allclose(a.sum(dim=(1, 2)), torch.ones(16), atol=1e-5)


def test_blur_prob_and_final_sinc_give_identity_kernels():
    g = torch.Generator().manual_seed(1)
    k = K.random_blur_kernels(400, blur_prob=0.8, generator=g)
    pulse = K.pulse_kernels(1)[0]
    identity = torch.tensor([torch.equal(x, pulse) for x in k]).double().mean().item()
    assert identity == pytest.approx(0.2, abs=0.06)
    s = K.random_sinc_kernels(400, prob=0.8, generator=g)
    identity = torch.tensor([torch.equal(x, pulse) for x in s]).double().mean().item()
    assert identity == pytest.approx(0.2, abs=0.06)


def test_sinc_cutoff_rule_depends_on_size():
    """Size < 13: cutoff in [pi/3, pi]; size >= 13: [pi/5, pi] (RealESRGANDataset)."""
    p = K.sample_blur_params(4000, sinc_prob=1.0, generator=torch.Generator().manual_seed(2))
    assert (p["family"] == K.SINC).all()
    small, large = p["cutoff"][p["kernel_size"] < 13], p["cutoff"][p["kernel_size"] >= 13]
    assert small.min() >= math.pi / 3 and small.max() <= math.pi
    assert large.min() >= math.pi / 5 and large.max() <= math.pi and large.min() < math.pi / 3 - 0.1
    assert set(p["kernel_size"].tolist()) == {7, 9, 11, 13, 15, 17, 19, 21}
