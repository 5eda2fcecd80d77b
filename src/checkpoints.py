"""Reading trained weights: Lightning checkpoints of srsuite and plain/BasicSR-style state dicts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.methods.sr_forward import SRForward


def load_checkpoint_file(path: str | Path) -> dict[str, Any]:
    """``torch.load`` with the restricted (weights-only) unpickler; a clear error for a missing file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return torch.load(path, map_location="cpu", weights_only=True)


def extract_state_dict(ckpt: Mapping[str, Any], prefix: str = "sr.net.") -> dict[str, torch.Tensor]:
    """Network weights from a Lightning checkpoint (``state_dict`` with ``prefix``), a BasicSR file
    (``params_ema`` preferred over ``params``) or a bare state dict; ``module.`` (DataParallel) prefixes are
    removed."""
    if "state_dict" in ckpt:
        state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
        if not state:
            raise KeyError(f"checkpoint has no weights under '{prefix}'")
    elif "params_ema" in ckpt:
        state = dict(ckpt["params_ema"])
    elif "params" in ckpt:
        state = dict(ckpt["params"])
    else:
        state = dict(ckpt)
    return {k.removeprefix("module."): v for k, v in state.items()}


def build_eval_model(model_cfg: DictConfig, scale: int, ckpt_path: str | None) -> nn.Module:
    """The network of ``model_cfg`` at ``scale`` as an LR -> SR module, with weights from ``ckpt_path``.

    A Lightning checkpoint written by ``src.train`` carries its own model hyperparameters: those are used
    (its ``name`` must match ``model.name``, its scale must match ``scale``). A plain state dict is loaded
    into the network built from ``model_cfg``. Parameter-free methods (bicubic) take no checkpoint.
    """
    method_cls = get_class(model_cfg._target_)
    if not getattr(method_cls, "trainable", True):
        if ckpt_path:
            raise ValueError(f"model={model_cfg.name} has no parameters: drop ckpt_path={ckpt_path}")
        return instantiate(model_cfg, scale=scale)
    if not ckpt_path:
        raise ValueError(f"model={model_cfg.name} needs trained weights: pass ckpt_path=<file>")
    ckpt = load_checkpoint_file(ckpt_path)
    hparams = ckpt.get("hyper_parameters")
    if hparams is not None:
        if hparams.get("name") != model_cfg.name:
            raise ValueError(
                f"{ckpt_path} is a '{hparams.get('name')}' checkpoint, but model={model_cfg.name} was given"
            )
        if int(hparams["scale"]) != int(scale):
            raise ValueError(f"{ckpt_path} was trained for x{hparams['scale']}, cannot evaluate it at x{scale}")
        net = instantiate(OmegaConf.create(hparams["arch"]))
        spec = {k: hparams[k] for k in ("input", "color")}
    else:
        net = instantiate(model_cfg.arch)
        spec = {"input": model_cfg.input, "color": model_cfg.color}
    net.load_state_dict(extract_state_dict(ckpt), strict=True)
    return SRForward(net, scale=scale, **spec).eval()
