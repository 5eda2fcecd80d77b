"""The perception–distortion plot: PSNR against a no-reference or perceptual metric (NIQE, LPIPS, PI; lower is
more natural), per method, one panel per set and scale (Blau & Michaeli, CVPR 2018)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from src.evaluation.results import SetScore
from src.storage.atomic import atomic_write

log = logging.getLogger(__name__)

PERCEPTUAL = ("niqe", "lpips", "pi")  # lower = more natural; candidates for the x axis, in this order
PLOT_METRICS = ("auto",) + PERCEPTUAL + ("ma", "rmse", "ssim_y")


def pick_plot_metric(rows: Sequence[SetScore], metric: str = "auto", fallback: str | None = None) -> str | None:
    """The x-axis metric: ``metric`` itself, or for ``auto`` the first of NIQE, LPIPS, PI that every row has
    (then ``fallback`` if every row has it; ``None`` when nothing fits)."""
    if metric not in PLOT_METRICS:
        raise ValueError(f"plot metric {metric!r}: expected one of {PLOT_METRICS}")
    candidates = PERCEPTUAL + ((fallback,) if fallback else ()) if metric == "auto" else (metric,)
    return next((m for m in candidates if rows and all(r.values.get(m) is not None for r in rows)), None)


def plot_perception_distortion(
    rows: list[SetScore], path: Path, metric: str = "auto", connect: bool = True, fallback: str | None = None
) -> Path | None:
    """PSNR (y) against NIQE, LPIPS or PI (x; lower is better) per method, one panel per set and scale.

    ``connect`` joins the points in row order (a series such as network-interpolation alphas); otherwise each
    method is its own labelled point. Returns ``None`` (with a warning) when no row has the x-axis metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.values.get("psnr_y") is not None]
    metric = pick_plot_metric(rows, metric, fallback)
    if metric is None:
        log.warning("no perceptual metric in metrics.names (niqe / lpips): no perception-distortion plot")
        return None
    groups = list(dict.fromkeys((r.set, r.scale) for r in rows))
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for ax, (set_name, scale) in zip(axes[0], groups):
        points = [r for r in rows if (r.set, r.scale) == (set_name, scale)]
        xs, ys = [float(r.values[metric]) for r in points], [float(r.values["psnr_y"]) for r in points]
        if connect:
            ax.plot(xs, ys, "o-")
        else:
            for x, y in zip(xs, ys):
                ax.plot([x], [y], "o")
        for r, x, y in zip(points, xs, ys):
            ax.annotate(r.method, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        better = "lower = more natural" if metric in PERCEPTUAL + ("rmse",) else "higher = better"
        ax.set_xlabel(f"{metric.upper()} ({better})")
        ax.set_ylabel("PSNR Y (dB)")
        ax.set_title(f"{set_name} x{scale}")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        fig.savefig(fh, dpi=120, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path
