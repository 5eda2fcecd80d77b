"""Weight import and export: any file :mod:`src.weights.files` reads, as a state dict with our key names.

A file is turned into a state dict with our (BasicSR) key names in two table-driven steps, as spandrel does:
the **container** (:mod:`src.weights.containers`: a method's Lightning checkpoint, BasicSR's
``{'params', 'params_ema'}``, ``{'state_dict': …}`` or a bare state dict) and the **key layout**
(:mod:`src.weights.layouts`: official EDSR / RCAN / ESRGAN / VDSR / LapSRN / DRRN names, or ours).

When a network is given, the result is checked against ``net.state_dict()`` (:func:`compare_state_dicts`, the one
place that lists missing / unexpected keys and shape mismatches); a mismatch raises :class:`WeightsError` naming
the file, the detected layout and what differs. :func:`export_basicsr` writes the other direction
(``{'params', 'params_ema'}``) so BasicSR, Real-ESRGAN and chaiNNer load our networks.

This is the ground floor: it knows networks (``nn.Module``) and files, not methods. Reading a method's Lightning
checkpoint needs the prefix under which the method keeps its network (``net_prefixes``, from
``src.methods.LIGHTNING_NET_PREFIXES``).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from src.storage.atomic import write_bytes
from src.weights.containers import LIST_LIMIT, strip_prefixes, unwrap
from src.weights.files import StateDict, WeightsError, describe_checkpoint, read_file
from src.weights.layouts import LAYOUTS, convert

log = logging.getLogger(__name__)


# ---- comparing a state dict with a network -------------------------------------------------------------------
@dataclass
class Mismatch:
    """How a state dict differs from a reference (a network's ``state_dict()``): keys only in the reference
    (``missing``), keys only in the state dict (``unexpected``), and ``(key, state shape, reference shape)``."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shapes: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.shapes)

    def shape_lines(self, theirs: str = "network") -> list[str]:
        return [f"{k}: file {a} vs {theirs} {b}" for k, a, b in self.shapes]

    def groups(self, theirs: str = "network") -> list[tuple[str, list[str]]]:
        """``(label, items)`` for each non-empty kind of difference."""
        groups = (("missing keys", self.missing), ("unexpected keys", self.unexpected),
                  ("shape mismatches", self.shape_lines(theirs)))
        return [(label, items) for label, items in groups if items]


def compare_state_dicts(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]) -> Mismatch:
    """The keys and shapes in which ``state`` differs from ``own`` (both in their own key order)."""
    return Mismatch(
        missing=[k for k in own if k not in state],
        unexpected=[k for k in state if k not in own],
        shapes=[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own
                if k in state and tuple(state[k].shape) != tuple(own[k].shape)],
    )


def _head(items: list[str]) -> str:
    more = f" … (+{len(items) - LIST_LIMIT} more)" if len(items) > LIST_LIMIT else ""
    return ", ".join(items[:LIST_LIMIT]) + more


def check_state_dict(state: Mapping[str, torch.Tensor], net: nn.Module, source: str = "<weights>",
                     layout: str = "?") -> None:
    """Raise :class:`WeightsError` unless ``state`` has exactly the keys and shapes of ``net.state_dict()``."""
    diff = compare_state_dicts(state, net.state_dict())
    if not diff:
        return
    groups = diff.groups()
    counts = ", ".join(f"{len(items)} {label}" for label, items in groups)
    lines = [f"{source} (detected layout: {layout}) does not match {type(net).__name__}: {counts}"]
    lines += [f"  {label} ({len(items)}): {_head(items)}" for label, items in groups]
    if layout == "basicsr" and diff.unexpected:
        known = ", ".join(lay.name for lay in LAYOUTS)
        lines.append(f"  (the key names fit no other known layout, so they were taken as BasicSR keys; known: {known})")
    raise WeightsError("\n".join(lines))


# ---- reading ---------------------------------------------------------------------------------------------------
def read_weights(path: str | Path, net: nn.Module | None = None,
                 net_prefixes: Sequence[str] = ()) -> tuple[StateDict, str]:
    """(state dict with our keys, description ``"<container>, <layout>"``) of a weights file; checked against
    ``net`` when given (see :func:`load_weights`)."""
    source = str(path)
    obj = read_file(path)
    what = describe_checkpoint(obj)
    if what:
        source = f"{source} ({what})"
    state, container = unwrap(obj, source, net_prefixes)
    state, layout = convert(state, net, source)
    if net is not None:
        check_state_dict(state, net, source, layout)
    return state, layout if container == "bare state dict" else f"{container}, {layout}"


def load_weights(path: str | Path, net: nn.Module | None = None, net_prefixes: Sequence[str] = ()) -> StateDict:
    """The weights in ``path`` as a state dict with our (BasicSR) key names.

    Any container of :data:`~src.weights.containers.CONTAINERS` and layout of
    :data:`~src.weights.layouts.LAYOUTS` is accepted (``net_prefixes``: where methods keep their network in
    their Lightning checkpoints). With ``net`` the keys and shapes are checked against ``net.state_dict()`` (a
    :class:`WeightsError` lists what differs) and the network guides conversions that need it (the MatConvNet
    layer order, the EDSR mean shift); nothing is loaded into ``net`` — use :func:`load_into` for that.
    """
    return read_weights(path, net, net_prefixes)[0]


def load_into(net: nn.Module, path: str | Path, net_prefixes: Sequence[str] = ()) -> str:
    """Load ``path`` into ``net`` with ``strict=True``; returns (and logs) the detected container and layout."""
    state, description = read_weights(path, net, net_prefixes)
    net.load_state_dict(state, strict=True)
    log.info("loaded %s into %s (%s)", path, type(net).__name__, description)
    return description


def check_resume_checkpoint(path: str | Path, method: nn.Module) -> None:
    """Before ``Trainer.fit(ckpt_path=path)``: the file must be one of our Lightning checkpoints of the same model
    name and scale whose weights fit ``method`` (a LightningModule); raises :class:`WeightsError` with one line
    saying what the file is and what this run expects."""
    obj = read_file(path)
    if not isinstance(obj, Mapping) or not isinstance(obj.get("state_dict"), Mapping) or "loops" not in obj:
        kind = describe_checkpoint(obj) or (
            "a weights file without training state" if isinstance(obj, Mapping) else type(obj).__name__)
        raise WeightsError(
            f"ckpt_path={path}: {kind}; resuming needs a Lightning checkpoint written by src.train "
            f"(…/checkpoints/last.ckpt). To start from weights only, pass model.weights={path}"
        )
    hp = obj.get("hyper_parameters") or {}
    ours = getattr(method, "hparams", {})
    for key in ("name", "scale"):
        if key in hp and key in ours and hp[key] != ours[key]:
            raise WeightsError(
                f"ckpt_path={path}: {describe_checkpoint(obj)}, but this run is {ours.get('name')} "
                f"x{ours.get('scale')} ({key} differs); resume with the same model and scale, or start from its "
                f"weights with model.weights=…"
            )
    diff = compare_state_dicts(obj["state_dict"], method.state_dict())
    if diff:
        details = "; ".join(f"{label} ({len(items)}): {_head(items)}" for label, items in diff.groups("run"))
        raise WeightsError(
            f"ckpt_path={path}: {describe_checkpoint(obj) or 'a checkpoint'} whose network differs from this "
            f"run's ({details}); resume with the model settings it was trained with"
        )


# ---- writing ---------------------------------------------------------------------------------------------------
def _export_tensor(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def export_basicsr(
    state_dict: Mapping[str, torch.Tensor], path: str | Path, ema_state_dict: Mapping[str, torch.Tensor] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``{'params': state_dict, 'params_ema': ema_state_dict or state_dict}`` (BasicSR's format, read by
    BasicSR, Real-ESRGAN, chaiNNer/spandrel), plus ``'srsuite': metadata`` when given (plain values: network
    name, constructor arguments, scale; other clients ignore it). A ``.safetensors`` path gets the flat EMA (else
    plain) weights and the metadata as JSON. Which key names suit which client: ``src.weights.detection``.
    Written atomically (:func:`src.storage.atomic.atomic_write`): a failed write leaves an existing file untouched."""
    path = Path(path)
    params = {k: _export_tensor(v) for k, v in strip_prefixes(state_dict).items()}
    ema = {k: _export_tensor(v) for k, v in strip_prefixes(ema_state_dict).items()} if ema_state_dict else params
    if set(ema) != set(params):
        raise WeightsError("export: the EMA weights do not have the same keys as the network weights")
    if path.suffix.lower() == ".safetensors":
        import json

        from safetensors.torch import save

        extra = {"srsuite": json.dumps(dict(metadata))} if metadata else {}
        write_bytes(path, save(ema, metadata={"format": "pt", **extra}))
    else:
        extra = {"srsuite": dict(metadata)} if metadata else {}
        buffer = io.BytesIO()  # serialised first: torch.save reports a failed write as an opaque RuntimeError
        torch.save({"params": params, "params_ema": ema, **extra}, buffer)
        write_bytes(path, buffer.getbuffer())
    return path

