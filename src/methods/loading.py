"""Building a method's network for evaluation from a weights file or one of the methods' Lightning checkpoints.

Sits above :mod:`src.weights` (which reads files and knows no method): this module knows where the methods keep
their network in a checkpoint (:data:`LIGHTNING_NET_PREFIXES`, from each method's ``net_prefix``) and how a
``conf/model`` config becomes an LR -> SR module (:class:`~src.methods.sr_forward.SRForward`).
"""

from __future__ import annotations

from pathlib import Path

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.methods.adversarial import AdversarialSR
from src.methods.sr_forward import SRForward
from src.methods.supervised import SupervisedSR
from src.weights.checkpoints import load_into
from src.weights.files import read_hparams

# where each trainable method keeps its network in state_dict(): what reading their checkpoints needs
LIGHTNING_NET_PREFIXES: tuple[str, ...] = tuple(dict.fromkeys(m.net_prefix for m in (SupervisedSR, AdversarialSR)))


def build_eval_model(model_cfg: DictConfig, scale: int, ckpt_path: str | None, ckpt_key: str | None = "ckpt_path",
                     channels_last: bool = False) -> nn.Module:
    """The network of ``model_cfg`` at ``scale`` as an LR -> SR module, with weights from ``ckpt_path`` or
    ``model_cfg.weights`` (one of the two).

    A Lightning checkpoint written by ``src.train`` carries its own model hyperparameters: those are used
    (its ``name`` must match ``model.name``; its scale must match ``scale`` unless the network sees
    bicubic-upsampled input, which works at any scale). A weights file without hyperparameters (BasicSR,
    official layouts, .safetensors, .mat) is loaded into the network built from ``model_cfg`` at ``scale``.
    Parameter-free methods (bicubic) take no weights. ``ckpt_key``: the name of the caller's checkpoint key in
    messages (``None``: the caller has none, only ``model.weights``). ``channels_last``: run the network in that
    memory format (the entry point's ``channels_last``). An ``.onnx`` file (``python -m src.export …
    format=onnx``) runs through onnxruntime with the colour / input handling stated in its metadata.
    """
    weights = model_cfg.get("weights")
    if weights and str(weights).lower().endswith(".onnx"):  # an exported graph: run by onnxruntime
        return onnx_sr_model(weights, scale)
    method_cls = get_class(model_cfg._target_)
    if not getattr(method_cls, "trainable", True):
        if ckpt_path or weights:
            given = " / ".join(k for k in (ckpt_key, "model.weights") if k)
            raise ValueError(f"model={model_cfg.name} has no parameters: drop {given}")
        return instantiate(model_cfg, scale=scale)
    if ckpt_path and weights:
        raise ValueError(f"give either ckpt_path={ckpt_path} or model.weights={weights}, not both")
    source = ckpt_path or weights
    if not source:
        options = f"{ckpt_key}=<Lightning checkpoint> or " if ckpt_key else ""
        raise ValueError(
            f"model={model_cfg.name} needs trained weights: pass {options}model.weights=<weights file> "
            f"(BasicSR .pth, .safetensors, official layouts, or a .ckpt of src.train)"
        )
    hparams = read_hparams(source)
    if hparams is not None:
        if hparams.get("name") != model_cfg.name:
            raise ValueError(f"{source} is a '{hparams.get('name')}' checkpoint, but model={model_cfg.name} was given")
        if int(hparams["scale"]) != int(scale) and hparams.get("input") != "bicubic":
            raise ValueError(f"{source} was trained for x{hparams['scale']}, cannot evaluate it at x{scale}")
        net = instantiate(OmegaConf.create(hparams["arch"]))
        spec = {k: hparams[k] for k in ("input", "color")}
    else:
        net = instantiate(model_cfg.arch)
        spec = {"input": model_cfg.input, "color": model_cfg.color}
    prefix = getattr(method_cls, "net_prefix", None)
    load_into(net, source, (prefix,) if prefix else LIGHTNING_NET_PREFIXES)
    return SRForward(net, scale=scale, channels_last=bool(channels_last), **spec).eval()


def onnx_sr_model(path: str | Path, scale: int) -> nn.Module:
    """An LR -> SR model (:class:`~src.methods.sr_forward.SRForward`) around an exported ONNX file
    (:class:`~src.weights.deploy.OnnxNetwork`, run by onnxruntime), with the colour and input handling its
    metadata states."""
    from src.weights.deploy import ExportError, OnnxNetwork

    net = OnnxNetwork(path)
    spec = net.spec
    if spec.input == "lr" and int(scale) != spec.scale:
        raise ExportError(f"{path} is a x{spec.scale} network; scale={scale} was asked for")
    return SRForward(net, scale=scale if spec.input == "bicubic" else spec.scale, input=spec.input,
                     color=spec.colour).eval()
