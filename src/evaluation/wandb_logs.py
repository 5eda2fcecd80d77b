"""Reading W&B runs without the W&B service: local run folders (offline or synced) and, through the public API,
a project on W&B's servers. What :mod:`src.evaluation.report` gathers from runs that logged to W&B.

W&B offline runs (``wandb/offline-run-*``) keep everything in one ``run-<id>.wandb`` file: LevelDB's log format
(32 KiB blocks of records, each with a 7-byte header: CRC32 (4, little endian), length (2), type (1: full,
2: first, 3: middle, 4: last fragment)) after a 7-byte file header (``:W&B``, 0xBEE1, version), holding
``wandb_internal_pb2.Record`` protobufs. Their ``run``/``config`` records give the config and the ``summary``
records the final summary (``test/<set>/<metric>``). An online run's folder has ``files/wandb-summary.json``
and ``files/config.yaml`` instead; those are read when present.
"""

from __future__ import annotations

import json
import netrc
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.config.validation import ConfigError


def wandb_is_configured() -> bool:
    """True when the user set W&B up for uploading: WANDB_MODE=online, WANDB_API_KEY, or `wandb login`."""
    if os.environ.get("WANDB_MODE", "").lower() == "online" or os.environ.get("WANDB_API_KEY"):
        return True
    netrc_path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        auth = netrc.netrc(netrc_path).authenticators("api.wandb.ai")
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return auth is not None


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


def fetch_wandb_project(path: str, timeout: int = 30) -> list[WandbRun]:
    """Every run of the W&B project ``<entity>/<project>`` through the public API (needs network access and
    an API key: ``WANDB_API_KEY`` or ``wandb login``)."""

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
