"""Gathering finished runs (``results.csv`` files, local W&B run folders, a W&B project) into one comparison table
and plot: what ``python -m src.report`` writes (``report.csv``, ``report.md``, the perception–distortion plot).
W&B runs are read by :mod:`src.evaluation.wandb_logs`, the plot drawn by :mod:`src.evaluation.plots`.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.config.validation import ConfigError
from src.evaluation.plots import PERCEPTUAL, pick_plot_metric, plot_perception_distortion
from src.evaluation.results import SetScore
from src.evaluation.wandb_logs import WandbRun, fetch_wandb_project, read_wandb_folder
from src.storage.atomic import atomic_write, write_text

log = logging.getLogger(__name__)

RESULT_FIELDS = ("method", "set", "scale", "image", "num_images", "notes")  # non-metric columns of results.csv


# ---- rows of the comparison table --------------------------------------------------------------------------
@dataclass
class ReportRow:
    """One method of one run on one set at one scale."""

    run: str
    source: str  # results.csv | wandb-offline | wandb-local | wandb-api (+ ", val" when from val/ keys)
    method: str
    set: str
    scale: int | None
    values: dict[str, float | None]
    num_images: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _number(text: str) -> float | None:
    text = (text or "").strip()
    if text in ("", "n/a", "nan", "None"):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def read_results_csv(path: str | Path, run: str) -> list[ReportRow]:
    """The rows of a ``results.csv`` written by train's held-out report or by evaluate."""
    rows = []
    with Path(path).open(newline="") as fh:
        for rec in csv.DictReader(fh):
            if "method" not in rec or "set" not in rec:
                continue
            values = {k: _number(v) for k, v in rec.items() if k and k not in RESULT_FIELDS}
            scale = _number(rec.get("scale", ""))
            images = _number(rec.get("num_images", ""))
            rows.append(ReportRow(run, "results.csv", rec["method"], rec["set"], None if scale is None else int(scale),
                                  values, None if images is None else int(images)))
    return rows


# ---- rows from W&B runs --------------------------------------------------------------------------------------
def _config_get(config: dict[str, Any], *paths: str) -> Any:
    for dotted in paths:
        node: Any = config
        for key in dotted.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            return node
    return None


_SUMMARY_KEY = re.compile(r"^(test|val)/([^/]+)/([^/]+)$")


def rows_from_wandb(run: WandbRun, label: str, source: str) -> list[ReportRow]:
    """``test/<set>/<metric>`` summary values (the held-out report of a training run) as rows; a run without
    them (stopped early, or older) gives its last ``val/<set>/<metric>`` values instead (source ``…, val``)."""
    numeric = {k: v for k, v in run.summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    method = _config_get(run.config, "model.name", "name") or "?"
    scale = _config_get(run.config, "scale", "model.scale")
    for prefix in ("test", "val"):
        sets: dict[str, dict[str, float]] = {}
        for key, value in numeric.items():
            match = _SUMMARY_KEY.match(key)
            if match and match.group(1) == prefix:
                sets.setdefault(match.group(2), {})[match.group(3)] = float(value)
        if sets:
            where = source if prefix == "test" else f"{source}, val"
            return [
                ReportRow(label, where, str(method), set_name, int(scale) if scale is not None else None,
                          _ordered(values), extra={"wandb_id": run.id})
                for set_name, values in sets.items()
            ]
    return []


def _ordered(values: dict[str, float]) -> dict[str, float]:
    front = [k for k in ("psnr_y", "ssim_y") if k in values]
    return {k: values[k] for k in front + sorted(k for k in values if k not in front)}


# ---- gathering ---------------------------------------------------------------------------------------------
def _label(path: Path, root: Path) -> str:
    rel = path.relative_to(root).as_posix() if path != root else ""
    return rel or root.name or str(root)


def gather_runs(root: str | Path) -> list[ReportRow]:
    """Rows from every run under ``root`` (recursively): each folder holding a ``results.csv`` (a training run's
    held-out report, an evaluate run) and each local W&B run folder (``wandb/offline-run-*``, ``wandb/run-*``).
    A W&B run inside a run folder that has a ``results.csv`` adds only its run id to that folder's rows (its
    ``test/…`` summary holds the same numbers)."""
    root = Path(root)
    rows: list[ReportRow] = []
    csv_runs: dict[Path, list[ReportRow]] = {}
    for path in sorted(root.rglob("results.csv")):
        if "wandb" in path.relative_to(root).parts:
            continue
        found = read_results_csv(path, _label(path.parent, root))
        csv_runs[path.parent] = found
        rows += found
    folders = sorted({p.parent for p in root.rglob("*.wandb")} | {p.parent.parent for p in
                                                                  root.rglob("files/wandb-summary.json")})
    for folder in folders:
        if folder.parent.name != "wandb" or not folder.name.startswith(("offline-run-", "run-")):
            continue
        try:
            run = read_wandb_folder(folder)
        except (OSError, ValueError) as exc:
            log.warning("skipping W&B run %s: %s", folder, exc)
            continue
        if run is None:
            continue
        owner = folder.parent.parent
        if owner in csv_runs:
            for row in csv_runs[owner]:
                row.extra.setdefault("wandb_id", run.id)
            continue
        source = "wandb-offline" if folder.name.startswith("offline-run-") else "wandb-local"
        inside = owner != root and owner.is_relative_to(root)
        rows += rows_from_wandb(run, _label(owner, root) if inside else run.name, source)
    return rows


def metric_columns(rows: Sequence[ReportRow]) -> list[str]:
    names: list[str] = []
    for row in rows:
        names += [k for k in row.values if k not in names]
    front = [n for n in ("psnr_y", "ssim_y") if n in names]
    return front + [n for n in names if n not in front]


def _fmt(name: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "inf"
    if name == "params":
        return str(int(value))
    return f"{value:.2f}" if name.startswith("psnr") else f"{value:.4f}"


def write_report_csv(rows: Sequence[ReportRow], path: str | Path) -> Path:
    """``run,source,method,set,scale,<metrics…>,num_images,wandb_id``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = metric_columns(rows)
    with atomic_write(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["run", "source", "method", "set", "scale", *metrics, "num_images", "wandb_id"])
        for r in rows:
            values = ["n/a" if r.values.get(m) is None else f"{r.values[m]:.6g}" for m in metrics]
            writer.writerow([r.run, r.source, r.method, r.set, "" if r.scale is None else r.scale, *values,
                             "" if r.num_images is None else r.num_images, r.extra.get("wandb_id", "")])
    return path


def report_markdown(rows: Sequence[ReportRow]) -> str:
    metrics = metric_columns(rows)
    lines = ["| Run | Method | Set | Scale | " + " | ".join(metrics) + " |",
             "|---|---|---|---|" + "---|" * len(metrics)]
    for r in rows:
        scale = f"x{r.scale}" if r.scale is not None else "?"
        cells = [_fmt(m, r.values.get(m)) for m in metrics]
        lines.append(f"| {r.run} | {r.method} | {r.set} | {scale} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_rows(rows: Sequence[ReportRow]) -> list[SetScore]:
    """Rows as plot points: exact duplicates (the bicubic baseline every training run reports) once; a method
    that appears in several runs labelled ``method (run)``."""
    unique: list[ReportRow] = []
    seen = set()
    for r in rows:
        key = (r.method, r.set, r.scale, tuple(sorted((k, v) for k, v in r.values.items() if k != "seconds")))
        if key not in seen and r.scale is not None:
            seen.add(key)
            unique.append(r)
    runs_of: dict[str, set[str]] = {}
    for r in unique:
        runs_of.setdefault(r.method, set()).add(r.run)
    return [
        SetScore(r.method if len(runs_of[r.method]) == 1 else f"{r.method} ({r.run})", r.set, int(r.scale), r.values,
                 r.num_images or 0)
        for r in unique
    ]


def write_report(rows: Sequence[ReportRow], out_dir: str | Path, plot_metric: str = "auto") -> dict[str, Path]:
    """``report.csv``, ``report.md`` and ``perception_distortion.png`` (PSNR against NIQE / LPIPS / PI; PSNR
    against SSIM when the runs have no perceptual metric) in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"csv": write_report_csv(rows, out_dir / "report.csv")}
    md = out_dir / "report.md"
    write_text(md, report_markdown(rows) + "\n")
    written["md"] = md
    points = plot_rows(rows)
    metric = pick_plot_metric(points, plot_metric, fallback="ssim_y")
    if metric is not None:
        name = "perception_distortion.png" if metric in PERCEPTUAL else f"psnr_vs_{metric}.png"
        plot = plot_perception_distortion(points, out_dir / name, metric=metric, connect=False)
        if plot is not None:
            written["plot"] = plot
    return written


# ---- python -m src.report ----------------------------------------------------------------------------------
_WANDB_PROJECT = re.compile(r"[\w.-]+/[\w.-]+")


def run_report(cfg, out_dir: str | Path) -> list[ReportRow]:
    """``python -m src.report``: gather ``cfg.runs`` (a folder, or ``<entity>/<project>`` on W&B) and write the
    comparison table and plot into ``cfg.output`` (default: the Hydra run folder ``out_dir``)."""
    from src.config.schema import ReportEntryConfig
    from src.config.validation import validate

    validate(cfg, ReportEntryConfig, trainer_key=None)
    target = str(cfg.runs)
    path = Path(target).expanduser()
    if path.is_dir():
        rows = gather_runs(path)
        if not rows:
            raise ConfigError(
                f"runs={target}: no runs found: expected folders holding results.csv (train / evaluate) or W&B run "
                "folders (wandb/offline-run-*) with test/<set>/<metric> or val/<set>/<metric> values"
            )
    elif not path.exists() and _WANDB_PROJECT.fullmatch(target):
        rows = []
        for run in fetch_wandb_project(target):
            rows += rows_from_wandb(run, run.name, "wandb-api")
        if not rows:
            raise ConfigError(f"W&B project {target}: no run has test/<set>/<metric> or val/<set>/<metric> values")
    else:
        raise FileNotFoundError(f"runs={target}: no such folder (a W&B project is given as <entity>/<project>)")
    out = Path(cfg.output) if cfg.output else Path(out_dir)
    written = write_report(rows, out, cfg.plot_metric)
    print(report_markdown(rows))
    print(f"\nWrote {', '.join(str(p) for p in written.values())}")
    if "plot" not in written:
        print("No plot: the runs share no metric to plot against PSNR (metrics.names=[…, niqe] adds NIQE)")
    return rows
