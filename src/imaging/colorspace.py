"""RGB <-> YCbCr with MATLAB's ``rgb2ycbcr`` coefficients (ITU-R BT.601, studio range), on float images.

Used by Y-channel models (SRCNN, FSRCNN, ESPCN as published) to split luminance from chrominance. Values are
in [0, 1]: Y in [16/255, 235/255], Cb/Cr in [16/255, 240/255] for inputs in [0, 1]. kornia's
``rgb_to_ycbcr`` is full-range JPEG YCbCr and gives different Y: it is not what SR papers use.
"""

from __future__ import annotations

import torch

_RGB_TO_YCBCR = (
    (65.481, 128.553, 24.966),
    (-37.797, -74.203, 112.0),
    (112.0, -93.786, -18.214),
)
_OFFSET = (16.0, 128.0, 128.0)


def _matrix(x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(_RGB_TO_YCBCR, dtype=x.dtype, device=x.device) / 255.0


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB in [0, 1] -> (..., 3, H, W) YCbCr in [0, 1] (MATLAB rgb2ycbcr / 255)."""
    if rgb.shape[-3] != 3:
        raise ValueError(f"rgb_to_ycbcr expects 3 channels in dim -3, got shape {tuple(rgb.shape)}")
    offset = torch.tensor(_OFFSET, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1) / 255.0
    return torch.einsum("ij,...jhw->...ihw", _matrix(rgb), rgb) + offset


def rgb_to_y(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB in [0, 1] -> (..., 1, H, W) Y in [16/255, 235/255]; no rounding."""
    return rgb_to_ycbcr(rgb)[..., :1, :, :]


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr`: (..., 3, H, W) YCbCr in [0, 1] -> RGB (not clamped)."""
    if ycbcr.shape[-3] != 3:
        raise ValueError(f"ycbcr_to_rgb expects 3 channels in dim -3, got shape {tuple(ycbcr.shape)}")
    offset = torch.tensor(_OFFSET, dtype=ycbcr.dtype, device=ycbcr.device).view(3, 1, 1) / 255.0
    inverse = torch.linalg.inv(_matrix(ycbcr).double()).to(ycbcr.dtype)
    return torch.einsum("ij,...jhw->...ihw", inverse, ycbcr - offset)
