"""Writing weights for other programs: ``{'params', 'params_ema', 'srsuite'}`` in the layout most clients read.

:func:`export_weights` picks the key names per network (:attr:`src.weights.arch_table.ArchEntry.to_client`:
BasicSR's, except RCAN, which gets the official EDSR-PyTorch names chaiNNer/spandrel recognise) and writes them
with :func:`src.weights.checkpoints.export_basicsr`; :func:`metadata` is the ``srsuite`` entry that lets
``model=auto`` rebuild the network exactly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from src.weights.arch_table import entry_for
from src.weights.checkpoints import export_basicsr
from src.weights.detection import detect_state
from src.weights.files import WeightsError

log = logging.getLogger(__name__)


def metadata(name: str, arch: Mapping[str, Any], scale: int | None, input: str, color: str) -> dict[str, Any]:
    """The ``srsuite`` entry of an exported file (plain values): the ``conf/model`` option, the network's
    ``_target_`` and constructor arguments, its scale, input and colour — what shapes alone cannot tell."""
    arch = json.loads(json.dumps(dict(arch)))  # plain containers (OmegaConf / tuples -> dict / list)
    return {"name": str(name), "arch": arch, "scale": None if scale is None else int(scale), "input": str(input),
            "color": str(color)}


def export_weights(params: Mapping[str, torch.Tensor], path: str | Path,
                   ema: Mapping[str, torch.Tensor] | None = None, meta: Mapping[str, Any] | None = None,
                   layout: str = "auto") -> tuple[Path, str]:
    """Write ``{'params', 'params_ema', 'srsuite': meta}`` for other clients; returns (path, who reads it).

    ``layout='auto'`` writes the key names the most clients read for this network (RCAN: the official names
    chaiNNer/spandrel recognise; the others: BasicSR's), ``'basicsr'`` always BasicSR's. Without ``meta`` the
    network is detected from the weights. ``.safetensors``: the flat (EMA) weights, ``meta`` as JSON metadata.
    """
    if layout not in ("auto", "basicsr"):
        raise ValueError(f"layout={layout!r}: expected auto or basicsr")
    state = dict(ema) if ema is not None else dict(params)
    kwargs: dict[str, Any] | None = None
    entry = None
    if meta is not None:
        entry = entry_for(str(meta["arch"].get("_target_")))
        kwargs = {k: v for k, v in meta["arch"].items() if k != "_target_"}
    else:
        try:
            found = detect_state({k: v.detach().cpu() for k, v in state.items()}, source="export")
        except WeightsError as exc:
            found = None
            log.warning("export: the network could not be identified, so no srsuite metadata is written "
                        "(model=auto will not read the file): %s", exc)
        if found is not None:
            entry, kwargs = found.entry, found.kwargs
            meta = metadata(found.option, found.arch, found.scale or 0, found.input, found.color)
    clients = entry.clients(kwargs) if entry is not None and kwargs is not None else "srsuite (unidentified network)"
    convert_fn = entry.to_client if (entry is not None and layout == "auto") else None
    if convert_fn is not None:
        converted = convert_fn(dict(params), kwargs), (convert_fn(dict(ema), kwargs) if ema is not None else None)
        if converted[0] is None:
            clients = "srsuite, BasicSR (BasicSR key names: the official layout cannot express this configuration)"
        else:
            params, ema = converted[0], converted[1]
    elif entry is not None and entry.to_client is not None:
        clients = f"srsuite, BasicSR ({layout} layout)"
    path = export_basicsr(params, path, ema, metadata=meta)
    return path, clients if clients.startswith("srsuite") else f"srsuite, {clients}"
