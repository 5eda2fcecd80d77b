"""Pretrained models by name: ``model.weights=RealESRGAN_x4plus`` means the manifest's file of that name, cached in
``$SR_WEIGHTS`` (default ``~/.cache/srsuite``) and downloaded on first use."""

from __future__ import annotations

import os
from pathlib import Path

from src.zoo.install import install_file
from src.zoo.manifest import Entry, closest, default_roots, load_manifest


def model_names(entries: dict[str, Entry]) -> dict[str, Entry]:
    """Model entries by every name they answer to: the entry name, its file name and the file name's stem."""
    out: dict[str, Entry] = {}
    for entry in entries.values():
        if entry.kind != "model":
            continue
        spec = entry.files[0]
        for key in (entry.name, spec.name, Path(spec.name).stem):
            out.setdefault(key, entry)
    return out


def resolve_weights(value: str | Path, *, manifest: str | Path | None = None, mirror: str | None = None,
                    progress: bool = True) -> Path:
    """The weights file meant by ``value``: an existing path as is; else a model name of the manifest
    (``python -m src.download list``), downloaded into the weights cache when missing.

    ``manifest`` / ``mirror`` default to ``$SR_MANIFEST`` / ``$SR_MIRROR`` (see ``src.download``). A value that is
    neither a file nor a model name raises ``FileNotFoundError`` naming the closest model names."""
    path = Path(str(value)).expanduser()
    if path.exists():
        return path
    entries = load_manifest(manifest if manifest is not None else os.environ.get("SR_MANIFEST"))
    by_name = model_names(entries)
    entry = by_name.get(str(value))
    if entry is None:
        names = sorted({e.name for e in by_name.values()})
        near = closest(str(value), names)
        hint = f"closest: {', '.join(near)}" if near else f"known: {', '.join(names)}"
        raise FileNotFoundError(
            f"weights not found: {value!r} is neither a file nor a model name of `python -m src.download list` "
            f"({hint})"
        )
    spec = entry.files[0]
    outcome = install_file(entry, spec, default_roots(), mirror=mirror if mirror is not None
                           else os.environ.get("SR_MIRROR"), progress=progress)
    return outcome.paths[0]


def resolve_weight_keys(node, *keys: str) -> None:
    """Replace each set ``node[key]`` (a config node: ``model.weights``, ``model.pretrained`` …) by the path
    :func:`resolve_weights` gives for it, so that model names work wherever a weights file does."""
    for key in keys:
        value = node.get(key)
        if value:
            node[key] = str(resolve_weights(value))
