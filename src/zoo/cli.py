"""``python -m src.download``: validate the config, list the manifest, install the named entries."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.config.schema import DownloadConfig
from src.config.validation import ConfigError, validate
from src.zoo.install import install
from src.zoo.manifest import ROOTS, Entry, closest, default_roots, load_manifest

ROOT_LABELS = {"data": "$SR_DATA", "benchmarks": "benchmarks", "weights": "$SR_WEIGHTS",
               "torch_hub": "$TORCH_HOME/hub/checkpoints"}
USAGE = """usage: python -m src.download names=[<entry>,…] [mirror=<base URL or folder>] [manifest=<extra.yaml>]
       python -m src.download list

Keys (conf/download.yaml): names, list, mirror ($SR_MIRROR), manifest ($SR_MANIFEST), progress, keep_archives,
retries, roots.data ($SR_DATA, else ./datasets), roots.benchmarks ($SR_BENCHMARKS, else the repository's
benchmarks/), roots.weights ($SR_WEIGHTS, else ~/.cache/srsuite), roots.torch_hub ($TORCH_HOME/hub/checkpoints).
A model entry also works as model.weights=<name> in train, evaluate, upscale and interpolate (downloaded on
first use). Downloads resume (HTTP Range) and are verified before anything is moved into place."""


def destinations(entry: Entry) -> str:
    out = []
    for spec in entry.files:
        base = ROOT_LABELS[spec.root] + (f"/{spec.destination}" if spec.destination else "")
        where = [f"{base}/{d}" for d in spec.extract.values()] if spec.extract else [base]
        out += [w for w in where if w not in out]
    return ", ".join(out)


def table(entries: dict[str, Entry]) -> str:
    """The entries as a Markdown table: name, kind, size, licence, checksum kind, destination."""
    rows = ["| name | kind | size | licence | checksum | destination |", "|---|---|---|---|---|---|"]
    for e in entries.values():
        rows.append(f"| `{e.name}` | {e.kind} | {e.size_text} | {e.licence} | {e.checksum_kinds} | "
                    f"`{destinations(e)}` |")
    return "\n".join(rows)


def print_help() -> None:
    print(USAGE + "\n")
    print(table(load_manifest()))


def _bool(cfg: DictConfig, key: str) -> bool:
    if not isinstance(cfg[key], bool):
        raise ConfigError(f"{key}={cfg[key]!r}: expected true or false")
    return cfg[key]


def pick(entries: dict[str, Entry], names: list[str]) -> list[Entry]:
    """The entries named (exact, else case-insensitive); an unknown name is an error naming the closest."""
    lower = {k.lower(): k for k in entries}
    out = []
    for name in names:
        key = name if name in entries else lower.get(str(name).lower())
        if key is None:
            near = closest(str(name), list(entries))
            raise ConfigError(f"names: unknown entry {name!r}" + (f"; closest: {', '.join(near)}" if near else "")
                              + " (python -m src.download list shows all)")
        if entries[key] not in out:
            out.append(entries[key])
    return out


def run(cfg: DictConfig) -> list:
    validate(cfg, DownloadConfig, trainer_key=None)  # with roots.*
    show_list, progress, keep = _bool(cfg, "list"), _bool(cfg, "progress"), _bool(cfg, "keep_archives")
    retries = cfg.retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"retries={retries!r}: expected an integer >= 0")
    names = cfg.names
    if isinstance(names, str):
        names = [names]
    names = list(OmegaConf.to_container(names) if not isinstance(names, list) else names)
    entries = load_manifest(cfg.manifest)
    if show_list or not names:
        print(table(entries))
        if not names:
            print("\nPick entries with names=[<name>,…] (python -m src.download --help for the keys).")
        return []
    chosen = pick(entries, names)
    roots = default_roots(**{k: cfg.roots[k] for k in ROOTS})
    mirror = str(cfg.mirror) if cfg.mirror else None
    outcomes = install(chosen, roots, mirror=mirror, progress=progress,
                       keep_archives=keep, retries=retries)
    for o in outcomes:
        print(o.line())
    if all(o.status == "present" for o in outcomes):
        print("Nothing to do: every file is already in place.")
    for e in chosen:
        if e.kind == "dataset" and any(f.root == "data" for f in e.files):
            print(f"{e.name}: data.root={Path(roots['data'])} (set $SR_DATA to use it from anywhere)")
    return outcomes
