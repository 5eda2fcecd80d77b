"""PIRM 2018 Perceptual Index: ``((10 - Ma) + NIQE) / 2`` of the *set means* (``evaluate_results.m``).
Without Ma there is no PI: ``perceptual_index_or_reason`` returns ``(None, reason)``.

RMSE is in ``src.metrics.rmse``, Ma et al.'s score in ``src.metrics.ma_features`` / ``src.metrics.ma_model``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from src.metrics.ma_features import ma_features
from src.metrics.ma_model import MA_MODEL_HELP, load_ma_model
from src.metrics.niqe import niqe
from src.metrics.rmse import as_image_list


# --- Perceptual Index ---------------------------------------------------------------------------------------
def perceptual_index(ma_mean: float, niqe_mean: float) -> float:
    """PIRM 2018 Perceptual Index ``((10 - Ma) + NIQE) / 2`` of set means (lower is better).

    Both arguments are means over the same set of images (the challenge averages each score over the set
    first); Ma must be a real Ma et al. score (see ``MA_MODEL_HELP``): there is no substitute.
    """
    ma_mean, niqe_mean = float(ma_mean), float(niqe_mean)
    if not (math.isfinite(ma_mean) and math.isfinite(niqe_mean)):
        raise ValueError(f"PI needs finite Ma and NIQE means, got Ma={ma_mean}, NIQE={niqe_mean}")
    return ((10.0 - ma_mean) + niqe_mean) / 2.0


def perceptual_index_or_reason(
    ma_mean: float | None, niqe_mean: float | None, reason: str | None = None
) -> tuple[float | None, str | None]:
    """``(PI, None)`` when both means are available, else ``(None, reason)`` ("PI = n/a" and why).

    Never computes a PI without Ma: ``ma_mean=None`` gives ``None`` and the reason (``reason`` if given).
    """
    if ma_mean is None:
        return None, reason or f"PI = n/a: Ma et al.'s score is unavailable. {MA_MODEL_HELP}"
    if niqe_mean is None:
        return None, reason or "PI = n/a: NIQE is unavailable"
    return perceptual_index(ma_mean, niqe_mean), None


@dataclass(frozen=True)
class PerceptualScores:
    """Set means of the PIRM no-reference scores; ``pi``/``ma`` are ``None`` with ``reason`` when Ma is missing."""

    niqe: float
    ma: float | None
    pi: float | None
    reason: str | None
    num_images: int


def perceptual_scores(
    srs: torch.Tensor | Sequence[torch.Tensor],
    ma_model_path: str | Path | None = None,
    crop_border: int = 4,
) -> PerceptualScores:
    """NIQE, Ma and PI of a set of SR images as PIRM 2018 computes them (shave 4, uint8 Y, means then PI).

    Without ``ma_model_path`` (or when the file is missing) only NIQE is computed and ``pi`` is ``None``
    with the reason.
    """
    images = as_image_list(srs)
    if not images:
        raise ValueError("perceptual_scores needs at least one image")
    niqe_mean = sum(niqe(im, crop_border) for im in images) / len(images)
    if ma_model_path is None:
        pi, reason = perceptual_index_or_reason(None, niqe_mean)
        return PerceptualScores(niqe_mean, None, pi, reason, len(images))
    try:
        model = load_ma_model(ma_model_path)
    except FileNotFoundError as err:
        pi, reason = perceptual_index_or_reason(None, niqe_mean, f"PI = n/a: {err}")
        return PerceptualScores(niqe_mean, None, pi, reason, len(images))
    ma_mean = sum(model.predict(*ma_features(im, crop_border)) for im in images) / len(images)
    return PerceptualScores(niqe_mean, ma_mean, perceptual_index(ma_mean, niqe_mean), None, len(images))
