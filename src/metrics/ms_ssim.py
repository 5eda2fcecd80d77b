"""MS-SSIM (Wang, Simoncelli and Bovik 2003) on the paper protocol, computed by torchmetrics.

Protocol: the pair is quantized to uint8 values, shaved by ``crop_border`` pixels and converted to MATLAB Y
(rounded; a gray ground truth stays gray) exactly as for PSNR/SSIM (``src.metrics.fidelity.prepare_for_scoring``),
then scored in float64 by torchmetrics' ``multiscale_structural_similarity_index_measure`` with
``data_range=255``, the 11x11 Gaussian window (sigma 1.5), K = (0.01, 0.03) and the five scale weights of
the paper ``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``. Between scales torchmetrics averages 2x2 blocks
(``avg_pool2d``; an odd row/column is dropped). ``normalize="relu"`` (torchmetrics' default) clamps negative
contrast-structure terms to 0 instead of raising them to fractional powers (NaN); ``None`` keeps them.
``channel="rgb"`` scores the three channels together (torchmetrics averages the per-scale SSIM maps over
channels).

With 5 scales and an 11x11 window torchmetrics needs ``H // 16 > 10`` (and the same for W): at least
176x176 pixels after shaving. Smaller images raise a ``ValueError`` that says so.
"""

from __future__ import annotations

from typing import Literal

import torch

from src.metrics.fidelity import prepare_for_scoring

__all__ = ["MS_SSIM_BETAS", "ms_ssim", "ms_ssim_min_size"]

MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim_min_size(kernel_size: int = 11, num_scales: int = len(MS_SSIM_BETAS)) -> int:
    """Smallest height/width torchmetrics accepts: ``size // (num_scales - 1) ** 2 > kernel_size - 1``."""
    div = max(1, num_scales - 1) ** 2
    return max(kernel_size * div, 2**num_scales)


def ms_ssim(
    sr: torch.Tensor,
    hr: torch.Tensor,
    crop_border: int,
    channel: Literal["y", "rgb"] = "y",
    y_rounding: bool = True,
    normalize: Literal["relu", "simple"] | None = "relu",
    quantize_sr: bool = True,
) -> float:
    """Paper-protocol MS-SSIM of one image pair (1 for identical images).

    Args:
        sr, hr: float tensors (C, H, W) in [0, 1], C = 3 (RGB) or 1 (gray).
        crop_border: pixels shaved from every border (the scale factor in SR papers).
        channel: ``"y"`` (MATLAB luminance; gray images as they are) or ``"rgb"``.
        y_rounding: round Y to integers as MATLAB does for uint8 images.
        normalize: torchmetrics' handling of negative contrast terms (``"relu"``, its default).
        quantize_sr: round the images to 8-bit levels first (``False``: float SR).

    Raises:
        ValueError: the shaved image is smaller than the 5-scale minimum (176x176).
    """
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    a, b = prepare_for_scoring(sr, hr, crop_border, channel, y_rounding, quantize_sr)
    need = ms_ssim_min_size()
    h, w = a.shape[-2:]
    if h < need or w < need:
        raise ValueError(
            f"MS-SSIM with {len(MS_SSIM_BETAS)} scales and an 11x11 window needs images of at least {need}x{need} "
            f"pixels after shaving {crop_border} px per border; got {h}x{w}"
        )
    value = multiscale_structural_similarity_index_measure(
        a.unsqueeze(0),
        b.unsqueeze(0),
        gaussian_kernel=True,
        sigma=1.5,
        kernel_size=11,
        data_range=255.0,
        k1=0.01,
        k2=0.03,
        betas=MS_SSIM_BETAS,
        normalize=normalize,
    )
    return float(value)
