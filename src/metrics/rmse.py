"""PIRM 2018 RMSE of a set: the challenge's RMSE (``evaluate_results.m``: ``sqrt(mean([scores.MSE]))``),
where each image's MSE is MATLAB ``immse`` of the uint8 Y channels (``rgb2ycbcr`` of the uint8 images, so Y is rounded),
shaved by 4 pixels (``convert_shave_image``). The mean is over images *before* the square root.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from src.metrics.fidelity import prepare_for_scoring


def as_image_list(x: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """One (C, H, W) image, an (N, C, H, W) batch or a sequence of images -> a list of (C, H, W) images."""
    if isinstance(x, torch.Tensor):
        if x.ndim == 3:
            return [x]
        if x.ndim == 4:
            return list(x.unbind(0))
        raise ValueError(f"expected (C, H, W) or (N, C, H, W) tensors, got shape {tuple(x.shape)}")
    return list(x)


def rmse_y(
    srs: torch.Tensor | Sequence[torch.Tensor],
    hrs: torch.Tensor | Sequence[torch.Tensor],
    crop_border: int = 4,
    y_rounding: bool = True,
) -> float:
    """PIRM 2018 RMSE of a set: ``sqrt(mean over images of the per-image MSE)`` on uint8 Y, shaved.

    Args:
        srs, hrs: float images (C, H, W) in [0, 1] (a list, or one (N, C, H, W) tensor, or one image each).
            Images are quantized to uint8 values, shaved by ``crop_border`` and converted with MATLAB
            ``rgb2ycbcr`` (Y rounded as MATLAB does for uint8 images); a gray ground truth is scored on
            its gray values (see ``src.metrics.fidelity``).
        crop_border: pixels shaved from every border (PIRM: 4).
        y_rounding: round Y (MATLAB uint8; ``False`` keeps it unrounded).

    Returns:
        The RMSE in grey levels (0..255 scale).
    """
    srs_l, hrs_l = as_image_list(srs), as_image_list(hrs)
    if len(srs_l) != len(hrs_l) or not srs_l:
        raise ValueError(f"need equally many SR and HR images (at least one), got {len(srs_l)} and {len(hrs_l)}")
    mses = []
    for sr, hr in zip(srs_l, hrs_l):
        a, b = prepare_for_scoring(sr, hr, crop_border, "y", y_rounding)
        mses.append(torch.mean((a - b) ** 2).item())
    return math.sqrt(sum(mses) / len(mses))
