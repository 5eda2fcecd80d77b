"""Paper-protocol fidelity metrics: PSNR and SSIM on the Y channel, as SR papers compute them in MATLAB.

Protocol (per image; a set's score is the mean of the per-image scores):

1. ``quantize``: clamp to [0, 1], multiply by 255, round -> uint8 values (kept as float64). ``quantize_sr=False``
   skips the rounding (clamp and x255 only): the float network output is scored.
2. Shave ``crop_border`` pixels (usually the scale factor) from every border.
3. ``channel="y"``: an RGB image is converted to luminance with MATLAB ``rgb2ycbcr``
   (``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in [0, 255]), rounded to an integer
   as MATLAB does for uint8 images (``y_rounding=False`` keeps it unrounded, BasicSR's choice).
   A single-channel (grayscale) ground truth is scored on its gray values directly, as the MATLAB test
   code does (it only calls ``rgb2ycbcr`` when the image has 3 channels). A 3-channel SR output of a gray
   ground truth (e.g. a network fed the gray image expanded to RGB) is converted to gray with MATLAB
   ``rgb2gray`` weights (0.2989, 0.5870, 0.1140; full range, so R = G = B gives back the gray value),
   never to the 16..235 Y range, which would not be comparable with the 0..255 gray ground truth.
   ``channel="rgb"``: all channels of an RGB pair are scored (a gray ground truth as above).
4. PSNR in float64 with peak 255; SSIM (Wang et al. 2004) with an 11x11 Gaussian window (sigma 1.5,
   normalised), 'valid' filtering, ``C1 = (0.01 * 255)^2``, ``C2 = (0.03 * 255)^2``, mean of the SSIM map;
   channels are scored separately and averaged.

All functions take float tensors (C, H, W) with values in [0, 1], C = 3 (RGB) or 1 (gray), on any device.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from src.imaging.colorspace import rgb_to_gray_matlab, rgb_to_y_bt601_studio

__all__ = [
    "quantized_y",
    "quantized_gray",
    "quantize",
    "psnr",
    "ssim",
    "psnr_y",
    "ssim_y",
    "prepare_for_scoring",
]

Channel = Literal["y", "rgb"]



def _round_half_away(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``round``: halves go away from zero (torch.round rounds halves to even)."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def quantize(img: torch.Tensor) -> torch.Tensor:
    """Float image in [0, 1] (any shape) -> float64 uint8 values in [0, 255]: clamp, x255, round.

    Rounding is half away from zero (MATLAB ``uint8()``); values are non-negative after clamping.
    """
    return torch.floor(img.detach().to(torch.float64).clamp(0.0, 1.0) * 255.0 + 0.5)


def quantized_y(img: torch.Tensor, rounding: bool = True) -> torch.Tensor:
    """MATLAB ``rgb2ycbcr`` luminance of a uint8-valued RGB image, as MATLAB gives it for a uint8 image.

    Args:
        img: float64 tensor (3, H, W) (or (..., 3, H, W)) holding integer values in [0, 255] (:func:`quantize`).
        rounding: round Y to an integer, half away from zero, as MATLAB does for uint8 images;
            ``False`` keeps the unrounded value (BasicSR's choice).

    Returns:
        float64 tensor (H, W) (or (..., H, W)) with Y in [16, 235]
        (:func:`src.imaging.colorspace.rgb_to_y_bt601_studio` at peak 255).
    """
    y = rgb_to_y_bt601_studio(img.to(torch.float64), peak=255.0)[..., 0, :, :]
    return _round_half_away(y) if rounding else y


def quantized_gray(img: torch.Tensor, rounding: bool = True) -> torch.Tensor:
    """MATLAB ``rgb2gray`` of a uint8-valued RGB image: float64 (..., 3, H, W) in [0, 255] -> (..., H, W),
    rounded half away from zero unless ``rounding=False`` (:func:`src.imaging.colorspace.rgb_to_gray_matlab`).

    Full range (weights sum to 1), so an image with R = G = B gives back its gray values.
    """
    gray = rgb_to_gray_matlab(img.to(torch.float64))[..., 0, :, :]
    return _round_half_away(gray) if rounding else gray


def _check_pair(sr: torch.Tensor, hr: torch.Tensor) -> None:
    if sr.ndim != 3 or hr.ndim != 3:
        raise ValueError(f"expected (C, H, W) tensors, got sr shape {tuple(sr.shape)} and hr shape {tuple(hr.shape)}")
    if sr.shape[0] not in (1, 3) or hr.shape[0] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got sr shape {tuple(sr.shape)} and hr shape {tuple(hr.shape)}")
    same = sr.shape == hr.shape
    gray_gt = sr.shape[0] == 3 and hr.shape[0] == 1 and sr.shape[1:] == hr.shape[1:]
    if not (same or gray_gt):
        raise ValueError(
            f"sr and hr shapes differ: sr {tuple(sr.shape)} vs hr {tuple(hr.shape)} "
            "(only a 3-channel sr with a 1-channel gray hr of the same size is accepted)"
        )


def prepare_for_scoring(
    sr: torch.Tensor,
    hr: torch.Tensor,
    crop_border: int,
    channel: Channel = "y",
    y_rounding: bool = True,
    quantize_sr: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply steps 1-3 of the protocol (quantize, shave, colour handling).

    Args:
        sr, hr: float tensors (C, H, W) in [0, 1]; C = 3 or 1, equal shapes, or sr 3-channel with a gray hr.
        crop_border: pixels shaved from every border (>= 0).
        channel: ``"y"`` (luminance) or ``"rgb"`` (all channels).
        y_rounding: round the luminance to integers as MATLAB does for uint8 images.
        quantize_sr: round both images to 8-bit levels first (``False``: clamped floats x255).

    Returns:
        Two float64 tensors (K, H - 2b, W - 2b) of values in [0, 255]: K = 1 for Y or gray, 3 for RGB.
    """
    _check_pair(sr, hr)
    if channel not in ("y", "rgb"):
        raise ValueError(f"channel must be 'y' or 'rgb', got {channel!r}")
    crop_border = int(crop_border)
    h, w = hr.shape[-2:]
    if crop_border < 0 or 2 * crop_border >= min(h, w):
        raise ValueError(f"crop_border={crop_border} leaves nothing of a {h}x{w} image")

    if crop_border > 0:  # shaving first is equivalent and quantizes fewer pixels
        sr = sr[:, crop_border:-crop_border, crop_border:-crop_border]
        hr = hr[:, crop_border:-crop_border, crop_border:-crop_border]
    if quantize_sr:
        sr_q = quantize(sr)
        hr_q = quantize(hr.to(sr.device))
    else:
        sr_q = sr.detach().to(torch.float64).clamp(0.0, 1.0) * 255.0
        hr_q = hr.detach().to(sr.device, torch.float64).clamp(0.0, 1.0) * 255.0

    if hr_q.shape[0] == 1:  # gray ground truth: score gray values, no Y conversion (MATLAB test code)
        if sr_q.shape[0] == 3:
            sr_q = quantized_gray(sr_q, rounding=y_rounding).unsqueeze(0)
        return sr_q, hr_q
    if channel == "y":
        return (
            quantized_y(sr_q, rounding=y_rounding).unsqueeze(0),
            quantized_y(hr_q, rounding=y_rounding).unsqueeze(0),
        )
    return sr_q, hr_q


def _psnr_255(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a - b) ** 2).item()
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def psnr(
    sr: torch.Tensor,
    hr: torch.Tensor,
    crop_border: int,
    channel: Channel = "y",
    y_rounding: bool = True,
    quantize_sr: bool = True,
) -> float:
    """Paper-protocol PSNR in dB (peak 255, float64) of one image pair.

    Args:
        sr, hr: float tensors (C, H, W) in [0, 1], C = 3 (RGB) or 1 (gray); see the module docstring.
        crop_border: pixels shaved from every border (the scale factor in SR papers).
        channel: ``"y"`` (MATLAB luminance; gray images as they are) or ``"rgb"`` (MSE over all channels).
        y_rounding: round Y to integers as MATLAB does for uint8 images (``False``: BasicSR).
        quantize_sr: round the images to 8-bit levels first (``False``: the float SR).

    Returns:
        PSNR in dB; ``inf`` for identical (quantized, shaved) images.
    """
    a, b = prepare_for_scoring(sr, hr, crop_border, channel, y_rounding, quantize_sr)
    return _psnr_255(a, b)


def _gaussian_window_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """1-D factor of MATLAB ``fspecial('gaussian', size, sigma)`` (its outer product is that 2-D window)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _valid_filter_1d(x: torch.Tensor, taps: torch.Tensor, dim: int) -> torch.Tensor:
    """'valid' correlation of ``x`` with 1-D ``taps`` along ``dim`` as a sum of shifted slices.

    Deterministic, and much faster than float64 ``conv2d`` on CPU (which has no optimised kernel).
    """
    k = taps.numel()
    n_out = x.shape[dim] - k + 1
    out = x.narrow(dim, 0, n_out) * taps[0]
    for i in range(1, k):
        out.add_(x.narrow(dim, i, n_out), alpha=float(taps[i]))
    return out


def _ssim_maps(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM map per channel: a, b float64 (K, H, W) in [0, 255] -> (K, H - 10, W - 10)."""
    c1 = (0.01 * 255.0) ** 2
    c2 = (0.03 * 255.0) ** 2
    g = _gaussian_window_1d().to(a.device)
    k = g.numel()
    if a.shape[-1] < k or a.shape[-2] < k:
        raise ValueError(f"SSIM needs at least {k}x{k} pixels after cropping, got {tuple(a.shape[-2:])}")
    # Five quantities, filtered together: (5 * K, H, W) through a separable 'valid' Gaussian.
    stack = torch.cat([a, b, a * a, b * b, a * b], dim=0)
    stack = _valid_filter_1d(stack, g, dim=-2)
    stack = _valid_filter_1d(stack, g, dim=-1)
    mu_a, mu_b, e_aa, e_bb, e_ab = stack.chunk(5, dim=0)
    mu_aa, mu_bb, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    var_a = e_aa - mu_aa
    var_b = e_bb - mu_bb
    cov = e_ab - mu_ab
    return ((2.0 * mu_ab + c1) * (2.0 * cov + c2)) / ((mu_aa + mu_bb + c1) * (var_a + var_b + c2))


def ssim(
    sr: torch.Tensor,
    hr: torch.Tensor,
    crop_border: int,
    channel: Channel = "y",
    y_rounding: bool = True,
    quantize_sr: bool = True,
) -> float:
    """Paper-protocol SSIM (Wang et al. 2004) of one image pair, in [-1, 1] (1 for identical images).

    11x11 Gaussian window (sigma 1.5), 'valid' filtering, C1 = (0.01*255)^2, C2 = (0.03*255)^2, mean of
    the SSIM map; no automatic downsampling (unlike MATLAB's later ``ssim.m``); RGB: mean over channels.

    Args:
        sr, hr: float tensors (C, H, W) in [0, 1], C = 3 (RGB) or 1 (gray); see the module docstring.
        crop_border: pixels shaved from every border (the scale factor in SR papers).
        channel: ``"y"`` or ``"rgb"``.
        y_rounding: round Y to integers as MATLAB does for uint8 images (``False``: BasicSR).
        quantize_sr: round the images to 8-bit levels first (``False``: float SR).
    """
    a, b = prepare_for_scoring(sr, hr, crop_border, channel, y_rounding, quantize_sr)
    maps = _ssim_maps(a, b)
    return maps.mean(dim=(-2, -1)).mean().item()


def psnr_y(sr: torch.Tensor, hr: torch.Tensor, crop_border: int, y_rounding: bool = True) -> float:
    """``psnr(sr, hr, crop_border, channel="y", y_rounding=y_rounding)``; (C, H, W) in [0, 1] -> dB."""
    return psnr(sr, hr, crop_border, channel="y", y_rounding=y_rounding)


def ssim_y(sr: torch.Tensor, hr: torch.Tensor, crop_border: int, y_rounding: bool = True) -> float:
    """``ssim(sr, hr, crop_border, channel="y", y_rounding=y_rounding)``; (C, H, W) in [0, 1]."""
    return ssim(sr, hr, crop_border, channel="y", y_rounding=y_rounding)
