"""Comparing methods and runs: side-by-side crops, the perception–distortion plot, and gathering finished runs
(``results.csv`` files, offline W&B run folders, a W&B project) into one table — what ``python -m src.report``
and the ``methods`` mode of ``python -m src.evaluate`` write.

W&B offline runs (``wandb/offline-run-*``) keep everything in one ``run-<id>.wandb`` file: LevelDB's log format
(32 KiB blocks of records, each with a 7-byte header: CRC32 (4, little endian), length (2), type (1: full,
2: first, 3: middle, 4: last fragment)) after a 7-byte file header (``:W&B``, 0xBEE1, version), holding
``wandb_internal_pb2.Record`` protobufs. Their ``run``/``config`` records give the config and the ``summary``
records the final summary (``test/<set>/<metric>``). An online run's folder has ``files/wandb-summary.json``
and ``files/config.yaml`` instead; those are read when present.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from src.config.validation import ConfigError
from src.evaluation.results import SetScore
from src.storage.atomic import atomic_write, write_text

log = logging.getLogger(__name__)

PERCEPTUAL = ("niqe", "lpips", "pi")  # lower = more natural; candidates for the x axis, in this order
PLOT_METRICS = ("auto",) + PERCEPTUAL + ("ma", "rmse", "ssim_y")
RESULT_FIELDS = ("method", "set", "scale", "image", "num_images", "notes")  # non-metric columns of results.csv


# ---- images and plots ------------------------------------------------------------------------------------
def nearest_upscale(lr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """An LR image (C, h, w) enlarged with nearest-neighbour to ``size`` (H, W): how the network's input looks
    next to its output (padded with the edge / cropped when ``size`` is not an exact multiple)."""
    factor = max(1, math.ceil(max(size[0] / lr.shape[-2], size[1] / lr.shape[-1])))
    up = F.interpolate(lr.unsqueeze(0).float(), scale_factor=factor, mode="nearest")[0]
    pad_h, pad_w = max(0, size[0] - up.shape[-2]), max(0, size[1] - up.shape[-1])
    if pad_h or pad_w:
        up = F.pad(up.unsqueeze(0), (0, pad_w, 0, pad_h), mode="replicate")[0]
    return up[:, : size[0], : size[1]]


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


# ---- W&B ---------------------------------------------------------------------------------------------------
@dataclass
class WandbRun:
    """What the report needs from one W&B run."""

    id: str
    name: str
    config: dict[str, Any]
    summary: dict[str, Any]
    project: str = ""
    group: str = ""
    folder: Path | None = None
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)  # the logged rows, in order (.wandb files only)


_BLOCK = 32768
_HEADER = 7


def _wandb_records(path: Path) -> Iterator[bytes]:
    """The payloads of a ``.wandb`` file (LevelDB log format); stops quietly at a truncated tail."""
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B transaction log (no ':W&B' header)")
    pos, pending = _HEADER, b""
    while pos + _HEADER <= len(data):
        room = _BLOCK - pos % _BLOCK
        if room < _HEADER:  # a block trailer too short for a header is zero padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        pos += _HEADER
        chunk = data[pos : pos + length]
        if len(chunk) < length:
            return
        pos += length
        if kind == 1:
            yield chunk
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            yield pending + chunk
            pending = b""


def _set_nested(target: dict, keys: Sequence[str], value: Any) -> None:
    for key in keys[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    target[keys[-1]] = value


def _apply_items(target: dict, items, remove: bool = False) -> None:
    for item in items:
        keys = list(item.nested_key) or [item.key]
        if remove:
            node = target
            for key in keys[:-1]:
                node = node.get(key, {}) if isinstance(node, dict) else {}
            if isinstance(node, dict):
                node.pop(keys[-1], None)
            continue
        try:
            value = json.loads(item.value_json)
        except json.JSONDecodeError:
            value = item.value_json
        _set_nested(target, keys, value)


def read_wandb_file(path: str | Path) -> WandbRun:
    """Run id, name, config and final summary from a ``run-<id>.wandb`` transaction log (see module doc). Values
    written with ``run.summary[...]`` and the last value of every ``log``-ged key both end up in the summary;
    when a log holds no summary records (old writers), the last history values are used."""
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    run_id = name = project = group = job_type = ""
    tags: list[str] = []
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    history: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for raw in _wandb_records(path):
        record = pb.Record()
        try:
            record.ParseFromString(raw)
        except Exception:  # noqa: BLE001 - a damaged record: skip it, keep the rest
            continue
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            run_id, name = run.run_id or run_id, run.display_name or name
            project, group = run.project or project, run.run_group or group
            job_type, tags = run.job_type or job_type, list(run.tags) or tags
            _apply_items(config, run.config.update)
            _apply_items(summary, run.summary.update)
        elif kind == "config":
            _apply_items(config, record.config.update)
            _apply_items(config, record.config.remove, remove=True)
        elif kind == "summary":
            _apply_items(summary, record.summary.update)
            _apply_items(summary, record.summary.remove, remove=True)
        elif kind == "history":
            row: dict[str, Any] = {}
            _apply_items(row, record.history.item)
            rows.append(row)
            _apply_items(history, record.history.item)
    config.pop("_wandb", None)
    if not any(not k.startswith("_") for k in summary):
        summary = {**history, **summary}
    run_id = run_id or path.stem.removeprefix("run-")
    return WandbRun(run_id, name or run_id, config, summary, project, group, path.parent, job_type, tags, rows)


def read_wandb_folder(folder: str | Path) -> WandbRun | None:
    """A local W&B run folder (``wandb/offline-run-*`` or ``wandb/run-*``): ``files/wandb-summary.json`` (+
    ``files/config.yaml``) when present, else the ``.wandb`` transaction log. ``None`` if it holds neither."""
    folder = Path(folder)
    summary_json = folder / "files" / "wandb-summary.json"
    logs = sorted(folder.glob("*.wandb"))
    run = read_wandb_file(logs[0]) if logs else None
    if summary_json.is_file():
        summary = json.loads(summary_json.read_text() or "{}")
        config = run.config if run else _read_wandb_config(folder / "files" / "config.yaml")
        run_id = run.id if run else folder.name.rsplit("-", 1)[-1]
        return WandbRun(run_id, run.name if run else run_id, config, summary,
                        run.project if run else "", run.group if run else "", folder,
                        run.job_type if run else "", run.tags if run else [], run.history if run else [])
    return run


def _read_wandb_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    import yaml

    raw = yaml.safe_load(path.read_text()) or {}
    # W&B's config.yaml wraps every key as {value: …} (and adds _wandb)
    return {k: (v.get("value") if isinstance(v, dict) and "value" in v else v) for k, v in raw.items() if k != "_wandb"}


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


def fetch_wandb_project(path: str, timeout: int = 30) -> list[WandbRun]:
    """Every run of the W&B project ``<entity>/<project>`` through the public API (needs network access and
    an API key: ``WANDB_API_KEY`` or ``wandb login``)."""
    from src.training.loggers import wandb_is_configured

    hint = (f"runs={path} (not a folder here) is read as a W&B project from W&B's servers: that needs network "
            "access and a W&B API key "
            "(WANDB_API_KEY or `wandb login`). For runs on this machine pass their folder (runs=outputs/…), "
            "or upload offline runs first with `wandb sync <run>/wandb/offline-run-*`.")
    if not wandb_is_configured():
        raise ConfigError(f"no W&B API key found. {hint}")
    try:
        import wandb

        api = wandb.Api(timeout=timeout)
        runs = []
        for run in api.runs(path):
            summary = dict(run.summary_metrics)  # the public API's summary as plain JSON values
            runs.append(WandbRun(run.id, run.name, dict(run.config), summary, path, run.group or ""))
    except Exception as exc:  # noqa: BLE001 - network, auth and missing-project errors all end here
        raise ConfigError(f"could not read W&B project {path!r} ({type(exc).__name__}: {exc}). {hint}") from None
    return runs


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
