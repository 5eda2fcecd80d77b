"""Unsharp masking (USM) of a batch, as Real-ESRGAN sharpens its ground truth (``USMSharp``), but separable.

With ``B`` the Gaussian blur of ``I`` (size ``radius`` made odd, OpenCV's default sigma
``0.3 * ((size - 1) / 2 - 1) + 0.8``, i.e. 8 for radius 50):

    residual = I - B;  mask = |residual| * 255 > threshold;  soft = blur(mask)
    out = soft * clip(I + weight * residual, 0, 1) + (1 - soft) * I

The reference applies the blur as a dense 51 x 51 filter (twice per call): about 90% of its degradation time on
CPU. A Gaussian is separable, so here it runs as two 1-D passes (width then height) with the same reflect
padding; the result equals the dense filter to float rounding (~1e-7). ``separable=False`` runs the dense
filter, for comparison. Both go through ``kornia.filters.filter2d`` (:mod:`src.degradations.filtering`); the
kernel is OpenCV's ``getGaussianKernel`` (float64, then float32), including its fixed tables for sizes <= 7,
which ``kornia.filters.get_gaussian_kernel1d`` does not reproduce.

Why not ``kornia.filters.gaussian_blur2d``: on one CPU core, 16 x 3 x 256 x 256, 51 taps, sigma 8, one blur takes
112 ms here (kornia row pass + our column pass as one matmul) vs 561 ms with ``gaussian_blur2d`` (its CPU path of
51 shifted multiply-adds per axis) and 1036 ms with ``filter2d_separable``, all within 5.4e-7 of the float64
dense filter; the whole USM 435 ms vs 1350 ms on ``gaussian_blur2d`` (outputs within 3e-7). Its ``F.pad`` also
refuses images of <= 25 px (the pad must be smaller than the side), which
:func:`src.degradations.filtering.correlate` handles. Numbers: ``experiments/benchmarks/kornia/results.md``.
"""

from __future__ import annotations

import math

import torch

from src.degradations.filtering import filter2d, separable_filter2d

__all__ = ["gaussian_blur", "gaussian_kernel1d", "usm_sharp"]

# OpenCV's fixed kernels for ksize <= 7 with sigma <= 0 (getGaussianKernel's small_gaussian_tab)
_SMALL = {
    1: (1.0,),
    3: (0.25, 0.5, 0.25),
    5: (0.0625, 0.25, 0.375, 0.25, 0.0625),
    7: (0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125),
}


def gaussian_kernel1d(ksize: int, sigma: float = 0.0) -> torch.Tensor:
    """OpenCV's ``getGaussianKernel(ksize, sigma)`` as a float64 (ksize,) tensor summing to 1."""
    if ksize % 2 != 1 or ksize < 1:
        raise ValueError(f"ksize must be odd and positive, got {ksize}")
    if sigma <= 0 and ksize in _SMALL:
        return torch.tensor(_SMALL[ksize], dtype=torch.float64)
    if sigma <= 0:
        sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
    x = torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2
    kernel = torch.exp(-(x * x) / (2 * sigma * sigma))
    return kernel / kernel.sum()


def gaussian_blur(img: torch.Tensor, ksize: int, sigma: float = 0.0, separable: bool = True) -> torch.Tensor:
    """Gaussian blur of a (B, C, H, W) batch with reflect padding (``cv2.GaussianBlur`` with sigma rule)."""
    k1 = gaussian_kernel1d(ksize, sigma)
    if separable:
        return separable_filter2d(img, k1.to(torch.float32))
    dense = torch.outer(k1, k1).to(torch.float32)  # as the reference: float64 outer product, then float32
    return filter2d(img, dense)


def usm_sharp(
    img: torch.Tensor, weight: float = 0.5, radius: int = 50, threshold: float = 10, separable: bool = True
) -> torch.Tensor:
    """Unsharp-mask a (B, C, H, W) batch in [0, 1] (see the module docstring). Runs on the batch's device."""
    if img.ndim == 3:
        return usm_sharp(img.unsqueeze(0), weight, radius, threshold, separable)[0]
    radius = int(radius)
    if radius % 2 == 0:
        radius += 1
    if not math.isfinite(weight):
        raise ValueError(f"usm_sharp: weight must be finite, got {weight}")
    blur = gaussian_blur(img, radius, 0.0, separable)
    residual = img - blur
    mask = (residual.abs().mul_(255) > threshold).to(img.dtype)
    soft_mask = gaussian_blur(mask, radius, 0.0, separable)
    sharp = torch.add(img, residual, alpha=weight).clamp_(0, 1)
    # soft * sharp + (1 - soft) * img, with fewer passes over the batch
    return torch.addcmul(img, soft_mask, sharp.sub_(img))
