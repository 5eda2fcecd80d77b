"""Degradation operators: per-sample blur, noise, JPEG, USM sharpening."""

from __future__ import annotations

import io
import math

import kornia
import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from PIL import Image

from src.degradations import filter2d, jpeg, usm_sharp
from src.degradations.filtering import reflect_pad, separable_filter2d
from src.degradations.kernels import random_blur_kernels
from src.degradations.noise import add_gaussian_noise, add_poisson_noise, gaussian_noise, poisson_noise
from src.degradations.sharpen import gaussian_blur, gaussian_kernel1d


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A 3 x 96 x 128 crop of scikit-image's astronaut, float in [0, 1]."""
    from skimage import data

    return torch.from_numpy(data.astronaut()[150:246, 180:308].copy()).permute(2, 0, 1).float() / 255.0


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / ((a.double() - b.double()) ** 2).mean().item())


# ---- filtering ---------------------------------------------------------------------------------------------------
def test_per_sample_blur_equals_a_per_image_loop():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(5, 3, 40, 33, generator=g)
    kernels = random_blur_kernels(5, sinc_prob=0.3, generator=g)
    out = filter2d(img, kernels)
    assert out.shape == img.shape and out.is_contiguous()
    assert torch.allclose(out, filter2d(img, kernels, trim=False), atol=1e-6)
    for i in range(5):
        for c in range(3):  # scipy's 'mirror' = reflect without repeating the edge (cv2 BORDER_REFLECT_101)
            ref = ndi.correlate(img[i, c].double().numpy(), kernels[i].double().numpy(), mode="mirror")
            assert np.abs(out[i, c].double().numpy() - ref).max() < 1e-5


def test_shared_kernel_and_small_images():
    img = torch.rand(3, 2, 5, 4, generator=torch.Generator().manual_seed(1))
    kernel = random_blur_kernels(1, kernel_sizes=[21], generator=torch.Generator().manual_seed(2))
    out = filter2d(img, kernel[0])  # one kernel for the batch, padding (10) wider than the image
    for i in range(3):
        for c in range(2):
            padded = np.pad(img[i, c].double().numpy(), 10, mode="reflect")
            ref = ndi.correlate(padded, kernel[0].double().numpy(), mode="constant")[10:-10, 10:-10]
            assert np.abs(out[i, c].double().numpy() - ref).max() < 1e-5


def test_filters_are_kornias_and_survive_pads_wider_than_the_image():
    g = torch.Generator().manual_seed(3)
    img = torch.rand(4, 3, 30, 27, generator=g)
    kernels = random_blur_kernels(4, sinc_prob=0.3, generator=g)
    assert torch.equal(filter2d(img, kernels, trim=False), kornia.filters.filter2d(img, kernels, border_type="reflect"))
    tiny = torch.rand(2, 3, 7, 12, generator=g)  # the 51-tap USM blur pads by 25 > 12 > 7
    with pytest.raises(Exception):  # noqa: B017 (torch's F.pad error): kornia alone cannot filter it
        kornia.filters.filter2d(tiny, torch.ones(1, 51, 51) / 51**2, border_type="reflect")
    k1 = gaussian_kernel1d(51)
    dense = torch.outer(k1, k1).numpy()
    for separable in (True, False):
        out = gaussian_blur(tiny, 51, separable=separable)
        for i in range(2):
            for c in range(3):
                ref = ndi.correlate(np.pad(tiny[i, c].double().numpy(), 25, mode="reflect"), dense,
                                    mode="constant")[25:-25, 25:-25]
                assert np.abs(out[i, c].double().numpy() - ref).max() < 3e-6  # float32 sums, as above
    tall = torch.rand(1, 1, 1100, 3, generator=g)  # taller than the column matrix: the column pass on kornia too
    ref = ndi.correlate1d(ndi.correlate1d(tall[0, 0].double().numpy(), k1.numpy(), 1, mode="mirror"), k1.numpy(), 0,
                          mode="mirror")
    assert np.abs(gaussian_blur(tall, 51)[0, 0].double().numpy() - ref).max() < 1e-6


@pytest.mark.parametrize(("h", "w", "pad"), [(6, 9, 3), (4, 5, 11), (1, 3, 4), (2, 2, 7)])
def test_reflect_pad_matches_numpy_for_any_width(h, w, pad):
    x = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w)
    ref = np.pad(x[0, 0].numpy(), pad, mode="reflect") if min(h, w) > 1 else np.pad(x[0, 0].numpy(), pad, "edge")
    if min(h, w) > 1:
        assert np.array_equal(reflect_pad(x, pad)[0, 0].numpy(), ref)
    else:  # a single row/column: numpy's reflect would be undefined along that axis; we replicate
        assert reflect_pad(x, pad).shape[-2:] == (h + 2 * pad, w + 2 * pad)


def test_separable_filter_equals_dense_outer_product():
    img = torch.rand(2, 3, 30, 41, generator=torch.Generator().manual_seed(3))
    kx, ky = torch.rand(7, dtype=torch.float64), torch.rand(11, dtype=torch.float64)
    kx, ky = kx / kx.sum(), ky / ky.sum()
    dense = torch.zeros(11, 11, dtype=torch.float64)
    dense[:, 2:9] = torch.outer(ky, kx)
    out = separable_filter2d(img, kx.float(), ky.float())
    assert torch.allclose(out, filter2d(img, dense.float()), atol=1e-6)


# ---- USM ---------------------------------------------------------------------------------------------------------
def test_gaussian_kernel_follows_opencv():
    k = gaussian_kernel1d(51)  # sigma = 0.3 * ((51 - 1) / 2 - 1) + 0.8 = 8
    x = torch.arange(51, dtype=torch.float64) - 25
    expected = torch.exp(-(x**2) / 128)
    assert torch.allclose(k, expected / expected.sum(), atol=1e-15)
    assert gaussian_kernel1d(5).tolist() == [0.0625, 0.25, 0.375, 0.25, 0.0625]  # OpenCV's fixed small kernel


def test_usm_separable_equals_dense(photo):
    batch = torch.stack([photo, photo.flip(-1)])
    sep = usm_sharp(batch)
    dense = usm_sharp(batch, separable=False)  # the reference's dense 51 x 51 filter
    assert (sep - dense).abs().max().item() < 3e-6
    exact = gaussian_blur(batch.double(), 51, separable=False)  # float64: the float32 rounding of either way
    assert (gaussian_blur(batch, 51) - exact).abs().max().item() < 1e-6  # two 51-tap passes: more accurate
    assert (gaussian_blur(batch, 51, separable=False) - exact).abs().max().item() < 3e-6  # than 2601-tap sums


def test_usm_matches_the_reference_formula(photo):
    """Real-ESRGAN's USMSharp, written out with SciPy: dense 51 x 51 Gaussian (sigma 8), reflect-101 border."""
    img = photo.double().numpy()
    k1 = gaussian_kernel1d(51).numpy()
    dense = np.outer(k1, k1)
    blur = np.stack([ndi.correlate(ch, dense, mode="mirror") for ch in img])
    residual = img - blur
    mask = (np.abs(residual) * 255 > 10).astype(np.float64)
    soft = np.stack([ndi.correlate(ch, dense, mode="mirror") for ch in mask])
    expected = soft * np.clip(img + 0.5 * residual, 0, 1) + (1 - soft) * img
    assert np.abs(usm_sharp(photo.unsqueeze(0))[0].double().numpy() - expected).max() < 2e-6


def test_usm_sharpens_edges_and_keeps_flat_areas(photo):
    out = usm_sharp(photo.unsqueeze(0))[0]
    assert out.shape == photo.shape and out.min() >= 0 and out.max() <= 1
    flat = torch.full((1, 3, 60, 60), 0.4)
    assert torch.allclose(usm_sharp(flat), flat, atol=1e-6)
    # sharpening raises local contrast: larger gradients
    grad = lambda t: (t[..., 1:] - t[..., :-1]).abs().mean()  # noqa: E731
    assert grad(out) > grad(photo) * 1.05


# ---- noise -------------------------------------------------------------------------------------------------------
def test_gaussian_noise_per_sample_sigma_and_gray():
    g = torch.Generator().manual_seed(4)
    img = torch.full((4, 3, 128, 128), 0.5)
    sigma = torch.tensor([1.0, 5.0, 20.0, 30.0])
    gray = torch.tensor([False, True, False, True])
    noise = gaussian_noise(img, sigma, gray, generator=g)
    std = noise.std(dim=(1, 2, 3)) * 255
    assert torch.allclose(std, sigma, rtol=0.03)
    assert noise.mean().abs() < 0.002
    assert torch.equal(noise[1, 0], noise[1, 2]) and torch.equal(noise[3, 1], noise[3, 2])  # gray: one field
    corr = torch.corrcoef(noise[2].reshape(3, -1))  # colour: independent channels
    assert (corr - torch.eye(3)).abs().max() < 0.03
    assert not torch.equal(noise[1, 0], noise[3, 0] * sigma[1] / sigma[3])  # each sample its own gray field


def test_gaussian_noise_clip_and_round():
    img = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    out = add_gaussian_noise(img, 30.0, generator=torch.Generator().manual_seed(6), clip=True, rounds=True)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal((out * 255).round() / 255, out)
    unclipped = add_gaussian_noise(img, 30.0, generator=torch.Generator().manual_seed(6), clip=False)
    assert unclipped.min() < 0 or unclipped.max() > 1


def test_poisson_noise_statistics():
    """An image with 256 levels: vals = 256, so the noise has mean 0 and variance img / 256 (times scale^2)."""
    g = torch.Generator().manual_seed(7)
    levels = torch.arange(256, dtype=torch.float32) / 255
    img = levels.repeat(3, 2048, 1).unsqueeze(0).repeat(2, 1, 1, 1)  # (2, 3, 2048, 256)
    scale = torch.tensor([1.0, 2.5])
    noise = poisson_noise(img, scale, False, generator=g)
    var = (noise**2).mean(dim=(1, 2)) / scale.view(2, 1) ** 2  # per level
    assert torch.allclose(var[:, 64:], levels[64:] / 256, rtol=0.08)
    assert noise[0].mean().abs() < 1e-4
    few = torch.tensor([0.0, 51 / 255, 1.0]).view(1, 1, 1, 3).repeat(1, 3, 300, 100)  # 3 levels
    counts = (poisson_noise(few, 1.0, generator=g) + few) * 4  # vals = 2^ceil(log2(3)) = 4: multiples of 1/4
    assert torch.allclose(counts, counts.round(), atol=1e-4)
    assert counts[..., 1].mean().item() == pytest.approx(4 * 51 / 255, rel=0.02)


def test_poisson_gray_is_shared_across_channels_and_clipped():
    img = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(8))
    noise = poisson_noise(img, 1.0, torch.tensor([True, False, True]), generator=torch.Generator().manual_seed(9))
    assert torch.equal(noise[0, 0], noise[0, 1]) and torch.equal(noise[2, 1], noise[2, 2])
    assert not torch.equal(noise[1, 0], noise[1, 1])
    out = add_poisson_noise(img, 3.0, generator=torch.Generator().manual_seed(9))
    assert out.min() >= 0 and out.max() <= 1


# ---- JPEG --------------------------------------------------------------------------------------------------------
def _pil_jpeg(img: torch.Tensor, quality: int) -> torch.Tensor:
    arr = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return torch.from_numpy(np.array(Image.open(buf))).permute(2, 0, 1).float() / 255


def test_jpeg_quality_100_is_nearly_lossless(photo):
    x = (photo * 255).round().unsqueeze(0) / 255
    no_sub = jpeg(x, 100, chroma_subsampling=False)
    assert (no_sub - x).abs().max().item() <= 4 / 255 and _psnr(no_sub, x) > 50
    assert _psnr(jpeg(x, 100), x) > 38  # 4:2:0 chroma subsampling, as PIL's default
    assert _psnr(jpeg(x, 100), x) > _psnr(_pil_jpeg(x[0], 100), x) - 0.5


def test_jpeg_is_finite_over_the_whole_quality_range():
    x = torch.rand(100, 3, 24, 20, generator=torch.Generator().manual_seed(10))
    out = jpeg(x, torch.arange(1, 101, dtype=torch.float32))
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert out.shape == x.shape and out.is_contiguous()
    fractional = jpeg(x[:3], torch.tensor([0.2, 99.99, 100.0]))  # clamped to [1, 100]
    assert torch.isfinite(fractional).all()


@pytest.mark.parametrize("quality", [10, 30, 50])
def test_jpeg_close_to_pil_at_low_quality(photo, quality):
    x = (photo * 255).round() / 255
    ours = jpeg(x.unsqueeze(0), quality)[0]
    ref = _pil_jpeg(x, quality)
    assert _psnr(ours, ref) > 38  # same artefacts (a real codec rounds between stages)
    assert abs(_psnr(ours, x) - _psnr(ref, x)) < 0.3  # same loss
    assert _psnr(ours, x) < 36


def test_jpeg_per_sample_quality_and_shapes(photo):
    x = torch.stack([photo, photo.flip(-2)])
    both = jpeg(x, torch.tensor([20.0, 80.0]))
    assert torch.allclose(both[0], jpeg(x[:1], 20)[0], atol=1e-6)
    assert torch.allclose(both[1], jpeg(x[1:], 80)[0], atol=1e-6)
    odd = jpeg(x[:, :, :37, :53], 40)  # not a multiple of 16: padded by edge replication, then cropped
    assert odd.shape == (2, 3, 37, 53)
    gray = jpeg(x[:, :1], 40)
    assert gray.shape == (2, 1, 96, 128) and _psnr(gray, x[:, :1]) > 28
    assert jpeg(x[0], 50).shape == x[0].shape
