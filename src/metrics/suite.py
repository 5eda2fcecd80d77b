"""The metrics selected in config (``metrics.names``), computed per image and combined per set.

Per-image metrics: ``psnr_y``, ``ssim_y``, ``psnr_rgb``, ``ssim_rgb``, ``ms_ssim`` (Y), ``lpips`` (full
reference, ``scale`` px shaved), ``niqe``, ``ma`` (no reference, ``nr_crop_border`` px shaved, 4 as in PIRM).
``pi`` also reports its NIQE component.
Set-level metrics: ``rmse`` (PIRM: sqrt of the mean per-image MSE on uint8 Y, 4 px shave) and ``pi`` (PIRM:
((10 − mean Ma) + mean NIQE) / 2). Without a Ma model file, ``pi`` is reported as n/a with the reason —
never computed from NIQE alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from src.metrics import lpips, ma_score, ms_ssim, niqe, psnr, ssim
from src.metrics.fidelity import prepare_for_scoring

PER_IMAGE = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "ms_ssim", "lpips", "niqe", "ma")
SET_LEVEL = ("rmse", "pi")
ALL_METRICS = PER_IMAGE + SET_LEVEL
# hidden per-image values that set-level metrics are built from
_NEEDS = {"rmse": ("_mse_y",), "pi": ("niqe", "_ma")}


@dataclass
class MetricSuite:
    """Computes ``names`` for (SR, HR) pairs.

    Args:
        names: metrics to report, from :data:`ALL_METRICS` (``psnr_y`` and ``ssim_y`` are always included).
        y_rounding: MATLAB-rounded Y (``False``: BasicSR's unrounded Y).
        quantize_sr: round SR (and HR) to 8-bit levels before the full-reference metrics (``False``: the float SR).
        lpips_net: ``alex`` | ``vgg``; lpips_weights: ``pretrained`` (local files) | ``random`` (tests only).
        ma_model: path of Ma et al.'s trained model (``model.mat``); needed for ``ma``, optional for ``pi``.
        nr_crop_border: border shaved before no-reference metrics and RMSE (PIRM 2018: 4).
    """

    names: Sequence[str] = ("psnr_y", "ssim_y")
    y_rounding: bool = True
    quantize_sr: bool = True
    lpips_net: str = "alex"
    lpips_weights: str = "pretrained"
    ma_model: str | None = None
    nr_crop_border: int = 4
    _compute: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        self.names = tuple(dict.fromkeys(("psnr_y", "ssim_y", *self.names)))  # PSNR/SSIM (Y) always
        unknown = [n for n in self.names if n not in ALL_METRICS]
        if unknown:
            raise ValueError(f"metrics.names: unknown {unknown or '(empty)'}; valid: {', '.join(ALL_METRICS)}")
        if "ma" in self.names and not self.ma_model:
            raise ValueError("metrics.names has 'ma' but metrics.ma_model is not set (Ma et al.'s model.mat)")
        for key in ("y_rounding", "quantize_sr"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"metrics.{key}={getattr(self, key)!r}: expected true or false")
        compute = [n for n in self.names if n in PER_IMAGE]
        for name in self.names:
            compute += [n for n in _NEEDS.get(name, ()) if n != "_ma" or self.ma_model]
        self._compute = tuple(dict.fromkeys(compute))

    def score(self, sr: torch.Tensor, hr: torch.Tensor, scale: int) -> dict[str, float]:
        """Per-image values for one SR (3, H, W) / HR (C, H, W) pair in [0, 1] (HR may be 1-channel gray)."""
        sr, hr = sr.detach().float().cpu(), hr.detach().float().cpu()
        out: dict[str, float] = {}
        for name in self._compute:
            out[name] = self._one(name, sr, hr, scale)
        return out

    def _one(self, name: str, sr: torch.Tensor, hr: torch.Tensor, scale: int) -> float:
        r, q = self.y_rounding, self.quantize_sr
        if name in ("psnr_y", "psnr_rgb"):
            return psnr(sr, hr, crop_border=scale, channel=name[5:], y_rounding=r, quantize_sr=q)
        if name in ("ssim_y", "ssim_rgb"):
            return ssim(sr, hr, crop_border=scale, channel=name[5:], y_rounding=r, quantize_sr=q)
        if name == "ms_ssim":
            return ms_ssim(sr, hr, crop_border=scale, y_rounding=r, quantize_sr=q)
        if name == "lpips":
            hr3 = hr if hr.shape[0] == 3 else hr.expand(3, -1, -1)
            return lpips(sr, hr3, net=self.lpips_net, crop_border=scale, weights=self.lpips_weights)
        if name == "niqe":
            return niqe(sr, crop_border=self.nr_crop_border)
        if name in ("ma", "_ma"):
            return ma_score(sr, self.ma_model, crop_border=self.nr_crop_border)
        if name == "_mse_y":
            a, b = prepare_for_scoring(sr, hr, self.nr_crop_border, "y", r, q)
            return float(((a - b) ** 2).mean())
        raise AssertionError(name)

    def aggregate(self, per_image: list[dict[str, float]]) -> tuple[dict[str, float | None], dict[str, str]]:
        """Set values (means of per-image values; RMSE and PI as PIRM defines them) and, for metrics that
        could not be computed, the reason."""
        values: dict[str, float | None] = {}
        notes: dict[str, str] = {}
        n = len(per_image)

        def mean(key: str) -> float:
            return sum(v[key] for v in per_image) / n

        computed = [k for k in per_image[0] if not k.startswith("_")]  # incl. NIQE of PI, timings
        for name in computed:
            values[name] = mean(name)
        for name in self.names:
            if name == "rmse":
                values[name] = math.sqrt(mean("_mse_y"))
            elif name == "pi":
                if self.ma_model:
                    values[name] = ((10 - mean("_ma")) + mean("niqe")) / 2
                else:
                    values[name] = None
                    notes[name] = "PI = n/a: no Ma model (set metrics.ma_model to Ma et al.'s model.mat)"
        return values, notes

    def public(self, values: dict[str, float]) -> dict[str, float]:
        """The per-image values worth reporting (hidden helpers such as ``_mse_y`` dropped)."""
        return {k: v for k, v in values.items() if not k.startswith("_")}


def build_metric_suite(cfg) -> MetricSuite:
    """A :class:`MetricSuite` from the ``metrics`` config node (unknown keys are an error)."""
    from omegaconf import OmegaConf

    from src.config.schema import MetricsConfig, keys_of
    from src.config.validation import check_keys

    check_keys(cfg, "metrics", keys_of(MetricsConfig), "the metric settings")
    values = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    return MetricSuite(**values)
