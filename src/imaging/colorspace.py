"""Colour conversions, one function per meaning (RGB channels in dim -3, float images):

- :func:`rgb_to_ycbcr` / :func:`ycbcr_to_rgb`: MATLAB's ``rgb2ycbcr`` (ITU-R BT.601, studio range) on [0, 1]
  images: Y in [16/255, 235/255], Cb/Cr in [16/255, 240/255]. Y-channel models (SRCNN, FSRCNN, ESPCN as
  published) split luminance from chrominance with it. kornia's ``rgb_to_ycbcr`` is full-range JPEG YCbCr and
  gives another Y: it is not what SR papers use.
- :func:`rgb_to_y_bt601_studio`: the Y of :func:`rgb_to_ycbcr` alone, for images in [0, ``peak``] (``peak`` 255:
  uint8 values, as the paper-protocol metrics of :mod:`src.metrics.fidelity` use it), computed in MATLAB
  ``imlincomb``'s order so that the metrics match MATLAB to the last bit.
- :func:`rgb_to_gray_matlab`: MATLAB's ``rgb2gray`` (weights 0.2989, 0.5870, 0.1140; full range): the gray
  value MATLAB test code compares with a gray ground truth.
- :func:`rgb_to_luma_bt601`: full-range BT.601 luma (0.299, 0.587, 0.114; PIL's ``convert("L")``, JFIF's Y):
  how a gray image becomes gray again after a network that works on RGB. Computed in place on one output
  plane (kornia's ``rgb_to_grayscale`` keeps three weighted planes): ``upscale`` applies it to whole outputs.

The Real-ESRGAN noise's gray (torchvision's weights 0.2989, 0.587, 0.114) is kornia's, in
:mod:`src.degradations.noise`; the JPEG codec's JFIF YCbCr matrix is part of :mod:`src.degradations.jpeg`.
"""

from __future__ import annotations

import torch

_RGB_TO_YCBCR = (
    (65.481, 128.553, 24.966),
    (-37.797, -74.203, 112.0),
    (112.0, -93.786, -18.214),
)
_OFFSET = (16.0, 128.0, 128.0)
# MATLAB rgb2ycbcr's Y row as MATLAB stores it: T = (1/255) * [65.481 128.553 24.966], offset 16 (of 255)
_Y_WEIGHTS = tuple((1.0 / 255.0) * c for c in _RGB_TO_YCBCR[0])
# MATLAB rgb2gray coefficients (first row of the inverse of the NTSC matrix, as MATLAB stores them)
_GRAY_MATLAB = (0.298936021293775, 0.587043074451121, 0.114020904255103)
_LUMA_BT601 = (0.299, 0.587, 0.114)


def _channels(rgb: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if rgb.ndim < 3 or rgb.shape[-3] != 3:
        raise ValueError(f"{name} expects 3 channels in dim -3, got shape {tuple(rgb.shape)}")
    return rgb.unbind(dim=-3)


def _matrix(x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(_RGB_TO_YCBCR, dtype=x.dtype, device=x.device) / 255.0


def rgb_to_y_bt601_studio(rgb: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """MATLAB ``rgb2ycbcr`` luminance: (..., 3, H, W) RGB in [0, ``peak``] -> (..., 1, H, W) Y in
    [16, 235] * ``peak`` / 255, in the input's dtype, not rounded. ``Y = K1 R + K2 G + K3 B + 16 peak / 255``
    with ``K = (1/255) [65.481 128.553 24.966]``, summed in that order (MATLAB's ``imlincomb``)."""
    r, g, b = _channels(rgb, "rgb_to_y_bt601_studio")
    y = _Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b + 16.0 * peak / 255.0
    return y.unsqueeze(-3)


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB in [0, 1] -> (..., 3, H, W) YCbCr in [0, 1] (MATLAB rgb2ycbcr / 255); the Y channel
    is :func:`rgb_to_y_bt601_studio`."""
    _channels(rgb, "rgb_to_ycbcr")
    offset = torch.tensor(_OFFSET[1:], dtype=rgb.dtype, device=rgb.device).view(2, 1, 1) / 255.0
    cbcr = torch.einsum("ij,...jhw->...ihw", _matrix(rgb)[1:], rgb) + offset
    return torch.cat([rgb_to_y_bt601_studio(rgb), cbcr], dim=-3)


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr`: (..., 3, H, W) YCbCr in [0, 1] -> RGB (not clamped)."""
    _channels(ycbcr, "ycbcr_to_rgb")
    offset = torch.tensor(_OFFSET, dtype=ycbcr.dtype, device=ycbcr.device).view(3, 1, 1) / 255.0
    inverse = torch.linalg.inv(_matrix(ycbcr).double()).to(ycbcr.dtype)
    return torch.einsum("ij,...jhw->...ihw", inverse, ycbcr - offset)


def rgb_to_gray_matlab(rgb: torch.Tensor) -> torch.Tensor:
    """MATLAB ``rgb2gray``: (..., 3, H, W) RGB -> (..., 1, H, W) gray in the same range, not rounded (the
    weights sum to 1: R = G = B gives back the gray value)."""
    r, g, b = _channels(rgb, "rgb_to_gray_matlab")
    return (_GRAY_MATLAB[0] * r + _GRAY_MATLAB[1] * g + _GRAY_MATLAB[2] * b).unsqueeze(-3)


def rgb_to_luma_bt601(rgb: torch.Tensor) -> torch.Tensor:
    """Full-range BT.601 luma (PIL's ``convert("L")``): (..., 3, H, W) -> (..., 1, H, W) in the same range (gray
    in, gray out: R = G = B gives back the gray)."""
    r, g, b = _channels(rgb, "rgb_to_luma_bt601")
    return (r * _LUMA_BT601[0]).add_(g, alpha=_LUMA_BT601[1]).add_(b, alpha=_LUMA_BT601[2]).unsqueeze(-3)
