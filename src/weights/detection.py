"""Which network a weights file holds (``model=auto``).

:func:`detect_file` reads a file with :mod:`src.weights.checkpoints` (every container and key layout it knows:
BasicSR, the methods' Lightning checkpoints, official EDSR/RCAN, original ESRGAN, VDSR ``.mat`` …), tries the
entries of :data:`src.weights.arch_table.ARCHS` whose signature fits, builds each candidate on the ``meta`` device
and keeps the first whose ``state_dict()`` has exactly the file's keys and shapes. A file that fits nothing is a
:class:`~src.weights.files.WeightsError` of one line naming the closest candidates and why they did not fit.

Knobs the shapes cannot tell (EDSR's ``res_scale``, the activation of a PReLU-free SRVGGNetCompact, FSRCNN's
stride, the scale of a bicubic-input SRCNN/VDSR …) come, in this order, from the caller (``model.arch.*`` /
``scale=``), from the ``srsuite`` metadata that :func:`src.weights.writing.export_weights` writes beside
``params`` (and from the hyperparameters of the methods' Lightning checkpoints), from an official EDSR/RCAN mean
shift, then from the entry's default; a knob without a default is an error naming the key to pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from hydra.utils import get_class

from src.weights.arch_table import ARCHS, REQUIRED, ArchEntry, Knob, UnfitError
from src.weights.checkpoints import compare_state_dicts
from src.weights.containers import unwrap
from src.weights.files import StateDict, WeightsError, read_file
from src.weights.layouts import DEFAULT_IMG_RANGE, convert

META_KEY = "srsuite"  # the metadata entry beside params / params_ema (ignored by BasicSR, Real-ESRGAN, spandrel)
META_FIELDS = ("name", "arch", "scale", "input", "color")


class MissingKnobError(WeightsError):
    """The network fits, but a constructor argument it needs is not in the file: the message names the key."""



# ---- detection ---------------------------------------------------------------------------------------------------
@dataclass
class Detection:
    """The network a file holds: ``arch`` (``_target_`` + constructor arguments, for ``instantiate``), the SR
    ``scale`` it was built for (``None``: a bicubic-input network of unknown scale), ``input`` / ``color`` for
    :class:`~src.methods.sr_forward.SRForward`, the ``conf/model`` ``option`` with its recipe, the file's
    container/layout, and ``notes`` on knobs taken from defaults."""

    entry: ArchEntry
    kwargs: dict[str, Any]
    scale: int | None
    option: str
    layout: str
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] | None = None

    @property
    def arch(self) -> dict[str, Any]:
        return {"_target_": self.entry.target, **self.kwargs}

    @property
    def input(self) -> str:
        return self.entry.input

    @property
    def color(self) -> str:
        return "y" if self.kwargs.get("num_in_ch") == 1 else "rgb"

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.kwargs.items())
        scale = f"x{self.scale}" if self.scale else "any scale (bicubic input)"
        return f"{self.entry.name}({args}), {scale}, {self.color.upper()} [{self.layout}]"


def _meta_of(obj: Any, path: Path) -> dict[str, Any] | None:
    """``srsuite`` metadata (our exports) or the hyperparameters of one of our Lightning checkpoints."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            text = (f.metadata() or {}).get(META_KEY)
        return json.loads(text) if text else None
    if isinstance(obj, Mapping):
        for key in (META_KEY, "hyper_parameters"):
            meta = obj.get(key)
            if isinstance(meta, Mapping) and isinstance(meta.get("arch"), Mapping):
                return {k: meta.get(k) for k in META_FIELDS}
    return None


def _few(items: list[str], n: int = 2) -> str:
    return ", ".join(items[:n]) + (" …" if len(items) > n else "")


def _mismatch(state: StateDict, own: Mapping[str, torch.Tensor]) -> str | None:
    """A short phrase on how ``state`` differs from ``own`` (:func:`~src.weights.checkpoints.compare_state_dicts`)."""
    diff = compare_state_dicts(state, own)
    parts = []
    if diff.missing:
        parts.append(f"{len(diff.missing)} missing ({_few(diff.missing)})")
    if diff.unexpected:
        parts.append(f"{len(diff.unexpected)} unexpected ({_few(diff.unexpected)})")
    if diff.shapes:
        shapes = [f"{k} {a} vs {b}" for k, a, b in diff.shapes]
        parts.append(f"{len(shapes)} shape mismatches ({_few(shapes, 1)})")
    return ", ".join(parts) or None


def _build_on_meta(target: str, kwargs: dict[str, Any]) -> torch.nn.Module:
    with torch.device("meta"):
        return get_class(target)(**kwargs)


def _knob_value(knob: Knob, kwargs: dict[str, Any]) -> Any:
    return knob.default(kwargs) if callable(knob.default) else knob.default


def _fill_knobs(entry: ArchEntry, kwargs: dict[str, Any], given: Mapping[str, Any], meta_arch: Mapping[str, Any],
                hints: Mapping[str, Any], source: str) -> tuple[dict[str, Any], list[str], list[str]]:
    """(arguments with every knob set, notes on defaults, knobs still unknown)."""
    for key, value in given.items():
        if key in kwargs and kwargs[key] != value:
            raise WeightsError(f"{source}: model.arch.{key}={value} contradicts the file, which holds "
                               f"{entry.name} with {key}={kwargs[key]}")
    kwargs = dict(kwargs)
    notes, unknown = [], []
    for key, knob in entry.knobs.items():
        if key in kwargs:
            continue
        for where in (given, meta_arch, hints):
            if key in where and where[key] is not None:
                kwargs[key] = where[key]
                break
        else:
            value = _knob_value(knob, kwargs)
            if value == REQUIRED:
                unknown.append(key)
                kwargs[key] = knob.probe
            else:
                kwargs[key] = value
                notes.append(f"{key}={value} (the default; {knob.how} to change)")
    return kwargs, notes, unknown


def _with_metadata(entry: ArchEntry, kwargs: dict[str, Any], meta_arch: Mapping[str, Any],
                   given: Mapping[str, Any], state: StateDict, notes: list[str],
                   unknown: list[str]) -> tuple[dict[str, Any], list[str], list[str]]:
    """``kwargs`` overlaid with every argument of the file's own metadata (what the caller gave still wins), if
    the network built that way has the file's keys and shapes too; else ``kwargs`` unchanged."""
    overlay = {**kwargs, **{k: v for k, v in meta_arch.items() if k not in given}}
    if overlay == kwargs:
        return kwargs, notes, unknown
    try:
        if _mismatch(state, _build_on_meta(entry.target, overlay).state_dict()):
            return kwargs, notes, unknown
    except (TypeError, ValueError):  # metadata of another version of the network
        return kwargs, notes, unknown
    from_meta = set(meta_arch)
    return (overlay, [n for n in notes if n.split("=", 1)[0] not in from_meta],
            [k for k in unknown if k not in from_meta])


def _official_mean_hint(state: StateDict) -> dict[str, Any]:
    """img_range / rgb_mean of an official EDSR/RCAN file's ``sub_mean`` (rgb_range = 255 in EDSR-PyTorch)."""
    bias = state.get("sub_mean.bias")
    if bias is None or bias.numel() != 3:
        return {}
    return {"img_range": DEFAULT_IMG_RANGE, "rgb_mean": [round(-float(b) / DEFAULT_IMG_RANGE, 6) for b in bias]}


def detect_state(state: StateDict, meta: Mapping[str, Any] | None = None, given: Mapping[str, Any] | None = None,
                 scale: int | None = None, source: str = "<weights>", layout: str = "?",
                 hints: Mapping[str, Any] | None = None) -> Detection:
    """The network of a state dict with our key names (see the module docstring).

    ``meta``: the file's ``srsuite`` metadata / Lightning hyperparameters; ``given``: constructor arguments
    from the caller (``model.arch.*``); ``scale``: the SR factor the caller asked for (``None``: any);
    ``hints``: knob values found in the file's original layout (an official mean shift).
    Raises :class:`~src.weights.checkpoints.WeightsError` (one line) when nothing fits, :class:`MissingKnobError` when a
    knob must be passed.
    """
    given = {k: v for k, v in (given or {}).items() if v is not None}
    meta_arch = dict((meta or {}).get("arch") or {})
    meta_target = meta_arch.pop("_target_", None)
    hints = {**_official_mean_hint(state), **(hints or {})}
    order = sorted(ARCHS, key=lambda e: e.target != meta_target)  # the file's own architecture first
    tried: list[tuple[float, str]] = []
    for entry in order:
        patterns = [re.compile(p) for p in entry.signature]
        hits = [any(p.fullmatch(k) for k in state) for p in patterns]
        if not all(hits):
            miss = entry.signature[hits.index(False)].replace("\\", "")
            tried.append((sum(hits) / len(hits), f"{entry.name} (no {miss})"))
            continue
        own_meta = meta_arch if entry.target == meta_target else {}
        try:
            kwargs = entry.infer(state)
            if scale is not None and entry.scale_arg in entry.knobs and entry.scale_arg not in given:
                given = {**given, entry.scale_arg: int(scale)}
            kwargs, notes, unknown = _fill_knobs(entry, kwargs, given, own_meta, hints, source)
            problem = _mismatch(state, _build_on_meta(entry.target, kwargs).state_dict())
            if not problem and own_meta:  # our files: their exact constructor arguments (WDSR-B's linear 0.8 …)
                kwargs, notes, unknown = _with_metadata(entry, kwargs, own_meta, given, state, notes, unknown)
        except UnfitError as exc:
            tried.append((1.0, f"{entry.name} ({exc})"))
            continue
        except (ValueError, TypeError, KeyError) as exc:
            if isinstance(exc, WeightsError):
                raise
            tried.append((1.0, f"{entry.name} (cannot be built with the shapes found: {exc})"))
            continue
        if problem:
            tried.append((1.5, f"{entry.name}({', '.join(f'{k}={v}' for k, v in kwargs.items())}: {problem})"))
            continue
        if unknown:
            hows = "; ".join(f"{k}: {entry.knobs[k].how}" for k in unknown)
            raise MissingKnobError(
                f"{source} holds {entry.name}, but the file cannot tell {', '.join(unknown)}: pass {hows}")
        net_scale = kwargs.get(entry.scale_arg) if entry.scale_arg else (meta or {}).get("scale")
        if entry.scale_arg is None and net_scale is None:
            net_scale = scale
        option = (meta or {}).get("name") or entry.option(kwargs)
        return Detection(entry, kwargs, int(net_scale) if net_scale else None, str(option), layout, notes,
                         dict(meta) if meta else None)
    tried.sort(key=lambda t: -t[0])
    sample = ", ".join(f"{k} {tuple(v.shape)}" for k, v in list(state.items())[:3])
    raise WeightsError(
        f"{source}: no known architecture fits ({layout}; {len(state)} tensors: {sample} …); closest: "
        + "; ".join(reason for _, reason in tried[:3])
    )


def detect_file(path: str | Path, given: Mapping[str, Any] | None = None, scale: int | None = None,
                net_prefixes: Sequence[str] = ()) -> Detection:
    """The network in a weights file (any container and layout :mod:`src.weights.checkpoints` reads;
    ``net_prefixes``: where methods keep their network in their Lightning checkpoints)."""
    path = Path(path)
    obj = read_file(path)
    state, container = unwrap(obj, str(path), net_prefixes)
    hints = _official_mean_hint(state)
    stand_in = SimpleNamespace(img_range=hints["img_range"], mean=torch.tensor(hints["rgb_mean"])) if hints else None
    state, layout = convert(state, stand_in, str(path))
    description = layout if container == "bare state dict" else f"{container}, {layout}"
    return detect_state(state, _meta_of(obj, path), given, scale, str(path), description, hints)
