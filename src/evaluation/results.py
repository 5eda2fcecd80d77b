"""Per-image scores, their per-set values, and the CSV / Markdown tables written by evaluate and train."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from src.metrics.suite import MetricSuite
from src.storage.atomic import atomic_write


@dataclass(frozen=True)
class ImageScore:
    """Scores of one SR image: ``values`` maps metric name -> value (``psnr_y``, ``ssim_y`` always)."""

    method: str
    set: str
    scale: int
    image: str
    values: dict[str, float]

    @property
    def psnr_y(self) -> float:
        return self.values["psnr_y"]

    @property
    def ssim_y(self) -> float:
        return self.values["ssim_y"]


@dataclass(frozen=True)
class SetScore:
    """One method on one set at one scale: per-image means (and set-level metrics such as RMSE and PI);
    ``None`` for a metric that could not be computed, with the reason in ``notes``."""

    method: str
    set: str
    scale: int
    values: dict[str, float | None]
    num_images: int
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def psnr_y(self) -> float:
        return self.values["psnr_y"]

    @property
    def ssim_y(self) -> float:
        return self.values["ssim_y"]


def summarize(scores: list[ImageScore], suite: MetricSuite | None = None) -> list[SetScore]:
    """Group by (method, set, scale), keeping first-seen order; per-set values from ``suite.aggregate``
    (plain means of every per-image value when no suite is given)."""
    groups: dict[tuple[str, str, int], list[ImageScore]] = defaultdict(list)
    for s in scores:
        groups[(s.method, s.set, s.scale)].append(s)
    out = []
    for (method, set_name, scale), items in groups.items():
        per_image = [x.values for x in items]
        if suite is not None:
            values, notes = suite.aggregate(per_image)
        else:
            values = {k: sum(v[k] for v in per_image) / len(per_image) for k in per_image[0]}
            notes = {}
        out.append(SetScore(method, set_name, scale, values, len(items), notes))
    return out


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return "inf" if math.isinf(value) else f"{value:.4f}"


def _metric_columns(rows: list[ImageScore] | list[SetScore]) -> list[str]:
    names: list[str] = []
    for row in rows:
        names += [k for k in row.values if not k.startswith("_") and k not in names]
    front = [n for n in ("psnr_y", "ssim_y") if n in names]
    return front + [n for n in names if n not in front]


def write_csv(rows: list[ImageScore] | list[SetScore], path: str | Path) -> Path:
    """Write rows to ``path``: ``method,set,scale[,image],<metrics…>[,num_images,notes]`` (4 decimals)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not rows:
        raise ValueError(f"no rows to write to {path}")
    metrics = _metric_columns(rows)
    per_image = isinstance(rows[0], ImageScore)
    header = ["method", "set", "scale"] + (["image"] if per_image else []) + metrics
    if not per_image:
        header.append("num_images")
        with_notes = any(r.notes for r in rows)
        if with_notes:
            header.append("notes")
    with atomic_write(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for r in rows:
            record = [r.method, r.set, r.scale] + ([r.image] if per_image else [])
            record += [_fmt(r.values.get(m)) for m in metrics]
            if not per_image:
                record.append(r.num_images)
                if with_notes:
                    record.append("; ".join(r.notes.values()))
            writer.writerow(record)
    return path


def markdown_table(rows: list[SetScore]) -> str:
    """One row per method and scale, one ``PSNR / SSIM`` column per set; other metrics in a second table."""
    sets = list(dict.fromkeys(r.set for r in rows))
    keys = list(dict.fromkeys((r.method, r.scale) for r in rows))
    cell = {(r.method, r.scale, r.set): f"{r.psnr_y:.2f} / {r.ssim_y:.4f}" for r in rows if "psnr_y" in r.values}
    lines = [
        "| Method | Scale | " + " | ".join(sets) + " |",
        "|---|---|" + "---|" * len(sets),
    ]
    for method, scale in keys:
        cells = [cell.get((method, scale, s), "n/a") for s in sets]
        lines.append(f"| {method} | x{scale} | " + " | ".join(cells) + " |")
    extra = [m for m in _metric_columns(rows) if m not in ("psnr_y", "ssim_y")]
    if extra:
        lines += ["", "| Method | Scale | Set | " + " | ".join(extra) + " |", "|---|---|---|" + "---|" * len(extra)]
        for r in rows:
            cells = [_fmt(r.values.get(m)) for m in extra]
            lines.append(f"| {r.method} | x{r.scale} | {r.set} | " + " | ".join(cells) + " |")
        notes = sorted({note for r in rows for note in r.notes.values()})
        lines += [f"\n{note}" for note in notes]
    return "\n".join(lines)
