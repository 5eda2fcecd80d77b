"""Per-image scores, their per-set means, and the CSV / Markdown tables written by evaluate and train."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from src.metrics import psnr, ssim


@dataclass(frozen=True)
class ImageScore:
    """Paper-protocol scores of one SR image (Y channel, ``scale`` px shaved)."""

    method: str
    set: str
    scale: int
    image: str
    psnr_y: float
    ssim_y: float


@dataclass(frozen=True)
class SetScore:
    """Mean of the per-image scores of one method on one set at one scale."""

    method: str
    set: str
    scale: int
    psnr_y: float
    ssim_y: float
    num_images: int


def score_image(
    sr: torch.Tensor, hr: torch.Tensor, scale: int, y_rounding: bool = True, crop_border: int | None = None
) -> tuple[float, float]:
    """(PSNR dB, SSIM) of ``sr`` against ``hr`` on Y (on the gray values for a 1-channel ``hr``).

    Args:
        sr: float (C, H, W) in [0, 1] (clamped and rounded to 8 bits inside the metric).
        hr: float (C, H, W) in [0, 1], same size.
        scale: the SR scale; ``crop_border`` defaults to it (``scale`` pixels shaved from every border).
    """
    border = scale if crop_border is None else crop_border
    return (
        psnr(sr, hr, crop_border=border, y_rounding=y_rounding),
        ssim(sr, hr, crop_border=border, y_rounding=y_rounding),
    )


def summarize(scores: list[ImageScore]) -> list[SetScore]:
    """Group by (method, set, scale), keeping first-seen order, and average the per-image scores."""
    groups: dict[tuple[str, str, int], list[ImageScore]] = defaultdict(list)
    for s in scores:
        groups[(s.method, s.set, s.scale)].append(s)
    return [
        SetScore(
            method=m,
            set=st,
            scale=sc,
            psnr_y=sum(x.psnr_y for x in items) / len(items),
            ssim_y=sum(x.ssim_y for x in items) / len(items),
            num_images=len(items),
        )
        for (m, st, sc), items in groups.items()
    ]


def write_csv(rows: list[ImageScore] | list[SetScore], path: str | Path) -> Path:
    """Write dataclass rows to ``path`` (PSNR with 4 decimals, SSIM with 4 decimals)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not rows:
        raise ValueError(f"no rows to write to {path}")
    names = [f.name for f in fields(rows[0])]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=names)
        writer.writeheader()
        for row in rows:
            record = asdict(row)
            for key in ("psnr_y", "ssim_y"):
                record[key] = _fmt(record[key])
            writer.writerow(record)
    return path


def _fmt(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.4f}"


def markdown_table(rows: list[SetScore]) -> str:
    """One row per method and scale, one ``PSNR / SSIM`` column per set."""
    sets = list(dict.fromkeys(r.set for r in rows))
    keys = list(dict.fromkeys((r.method, r.scale) for r in rows))
    cell = {(r.method, r.scale, r.set): f"{r.psnr_y:.2f} / {r.ssim_y:.4f}" for r in rows}
    lines = [
        "| Method | Scale | " + " | ".join(sets) + " |",
        "|---|---|" + "---|" * len(sets),
    ]
    for method, scale in keys:
        cells = [cell.get((method, scale, s), "n/a") for s in sets]
        lines.append(f"| {method} | x{scale} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
