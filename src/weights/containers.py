"""How a weights file wraps its state dict (:data:`CONTAINERS`), and taking it out with our key names.

A Lightning checkpoint of a method (``state_dict`` with the network under the method's prefix, e.g.
``SupervisedSR.net_prefix``; the EMA copy under another prefix containing ``ema``), BasicSR's
``{'params': …, 'params_ema': …}`` (EMA preferred), a generic ``{'state_dict': …}``, or a bare state dict.
``module.`` (DataParallel/DDP) and ``_orig_mod.`` (``torch.compile``) prefixes are removed. This layer knows no
method: the callers pass the prefixes under which methods keep their network (``net_prefixes``); without them a
Lightning checkpoint reads as a plain ``{'state_dict': …}`` wrapper.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from src.weights.files import StateDict, WeightsError

STRIP_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DDP, torch.compile
LIST_LIMIT = 10


def strip_prefixes(state: Mapping[str, Any]) -> StateDict:
    """``state`` without the ``module.`` / ``_orig_mod.`` key prefixes of DataParallel, DDP and torch.compile."""
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in STRIP_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value
    return out


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _sub_dict(state: Mapping[str, Any], prefix: str) -> StateDict:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _find_ema_prefix(state: Mapping[str, Any], params: StateDict, net_prefix: str) -> str | None:
    """An EMA copy of the network inside a Lightning ``state_dict``: another prefix, containing ``ema``, under
    which every network key appears."""
    if not params:
        return None
    first = next(iter(params))
    for key in state:
        if key.endswith("." + first) and "ema" in key[: -len(first)].lower():
            prefix = key[: -len(first)]
            if prefix != net_prefix and all(prefix + k in state for k in params):
                return prefix
    return None


def _net_prefix(ckpt: Any, net_prefixes: Sequence[str]) -> str | None:
    """The first of ``net_prefixes`` under which the checkpoint's ``state_dict`` has keys."""
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("state_dict"), Mapping):
        return None
    return next((p for p in net_prefixes if any(k.startswith(p) for k in ckpt["state_dict"])), None)


def lightning_weights(ckpt: Mapping[str, Any], net_prefixes: Sequence[str]) -> tuple[StateDict, StateDict | None]:
    """(network weights, EMA weights or ``None``) of a method's Lightning checkpoint; ``net_prefixes``: where
    methods keep their network in ``state_dict()`` (``src.methods.LIGHTNING_NET_PREFIXES``)."""
    state = ckpt["state_dict"]
    prefix = _net_prefix(ckpt, net_prefixes)
    if prefix is None:
        groups = sorted({k.split(".")[0] for k in state})
        where = " or ".join(f"'{p}'" for p in net_prefixes) or "a method's prefix (none given)"
        raise WeightsError(f"Lightning checkpoint has no weights under {where} (top-level modules: {groups})")
    params = strip_prefixes(_sub_dict(state, prefix))
    ema_prefix = _find_ema_prefix(state, params, prefix)
    ema = strip_prefixes(_sub_dict(state, ema_prefix)) if ema_prefix else None
    return params, ema


def _unwrap_lightning(obj: Mapping[str, Any], net_prefixes: Sequence[str]) -> StateDict:
    params, ema = lightning_weights(obj, net_prefixes)
    return ema if ema is not None else params


def _unwrap_basicsr(obj: Mapping[str, Any]) -> StateDict:
    key = "params_ema" if _is_state_dict(obj.get("params_ema")) else "params"
    return strip_prefixes(obj[key])


@dataclass(frozen=True)
class Container:
    """How a file wraps its state dict: ``detect(obj, net_prefixes)`` on the loaded object,
    ``unwrap(obj, net_prefixes)`` -> flat dict."""

    name: str
    detect: Callable[[Any, Sequence[str]], bool]
    unwrap: Callable[[Any, Sequence[str]], StateDict]


CONTAINERS: tuple[Container, ...] = (
    Container("lightning (srsuite)", lambda o, p: _net_prefix(o, p) is not None, _unwrap_lightning),
    Container(
        "basicsr params/params_ema",
        lambda o, p: isinstance(o, Mapping) and (_is_state_dict(o.get("params_ema"))
                                                 or _is_state_dict(o.get("params"))),
        lambda o, p: _unwrap_basicsr(o),
    ),
    Container(
        "state_dict wrapper",
        lambda o, p: isinstance(o, Mapping) and _is_state_dict(o.get("state_dict")),
        lambda o, p: strip_prefixes(o["state_dict"]),
    ),
    Container("bare state dict", lambda o, p: _is_state_dict(o), lambda o, p: strip_prefixes(o)),
)


def unwrap(obj: Any, source: str = "<weights>", net_prefixes: Sequence[str] = ()) -> tuple[StateDict, str]:
    """(flat state dict, container name) of a loaded file; ``net_prefixes`` as in :func:`lightning_weights`."""
    for container in CONTAINERS:
        if container.detect(obj, net_prefixes):
            return container.unwrap(obj, net_prefixes), container.name
    if isinstance(obj, Mapping):
        summary = ", ".join(f"{k!r}: {type(v).__name__}" for k, v in list(obj.items())[:LIST_LIMIT])
        raise WeightsError(
            f"{source}: not a known weights container (expected a state dict, {{'params'/'params_ema': …}} or a "
            f"Lightning checkpoint); top-level entries: {{{summary}}}"
        )
    raise WeightsError(f"{source}: expected a dict of weights, found {type(obj).__name__}")
