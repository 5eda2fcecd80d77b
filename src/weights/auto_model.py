"""``model=auto``: the model config of the network held by a weights file.

:func:`resolve_auto` reads the file with :func:`src.weights.detection.detect_file` (architecture and constructor
arguments from the key names and shapes) and replaces ``cfg.model`` by the ``conf/model`` option with that
network's recipe (the file's own option for our exports and checkpoints, else the architecture's: ``rrdb`` for
RRDBNet …), with ``arch`` set to the detected arguments, ``weights`` to the file, and ``input`` / ``color`` to the
network's. ``train`` (fine-tuning), ``evaluate``, ``upscale`` and ``interpolate`` call it before validating.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from src.config.validation import ConfigError

log = logging.getLogger(__name__)

AUTO = "auto"
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def is_auto(model_cfg: DictConfig | None) -> bool:
    """True for the ``model=auto`` config (``conf/model/auto.yaml``)."""
    return model_cfg is not None and model_cfg.get("name") == AUTO and "_target_" not in model_cfg


def compose_model_option(option: str) -> DictConfig:
    """``{'model': …}`` of ``conf/model/<option>.yaml`` as ``evaluate model=<option>`` composes it (so that
    options which also select a training degradation compose too), interpolations unresolved."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    def only_model(cfg: DictConfig) -> DictConfig:
        return OmegaConf.create({"model": OmegaConf.to_container(cfg.model, resolve=False)})

    if GlobalHydra.instance().is_initialized():
        return only_model(compose(config_name="evaluate", overrides=[f"model={option}"]))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return only_model(compose(config_name="evaluate", overrides=[f"model={option}"]))


def _options() -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml") if p.stem not in (AUTO, "bicubic"))


def _resolve_onnx(cfg: DictConfig, source: str, scale: int | None, fallback_scale: int | None):
    """An exported ONNX graph (``python -m src.export … format=onnx``): its metadata names the model option, scale,
    input and colour handling; it runs through onnxruntime (:func:`src.methods.loading.build_eval_model`)."""
    from types import SimpleNamespace

    from src.weights.deploy import ExportError, read_onnx_spec

    try:
        spec = read_onnx_spec(source)
    except ExportError as exc:
        raise ConfigError(str(exc)) from None
    if spec.input == "lr" and scale is not None and int(scale) != spec.scale:
        raise ConfigError(f"{source} is an x{spec.scale} ONNX graph, but scale={scale} was given: drop scale=")
    option = cfg.model.get("option") or spec.model
    if option not in _options():
        raise ConfigError(f"{source}: its metadata names model {option!r}, not a conf/model option "
                          f"({', '.join(_options())}): pass model=<option> model.weights={source}")
    net_scale = spec.scale if spec.input == "lr" else int(scale or fallback_scale or spec.scale)
    model = compose_model_option(option).model
    with open_dict(model):
        model.weights, model.input, model.color = str(source), spec.input, spec.colour
    with open_dict(cfg):
        cfg.model = model
        cfg.scale = net_scale
    log.info("model=auto: %s is an ONNX graph of %s x%d (%s, input %s)", source, option, spec.scale, spec.colour,
             spec.input)
    entry = SimpleNamespace(name=f"ONNX {option}", scale_arg="upscale" if spec.input == "lr" else None)
    return SimpleNamespace(entry=entry, scale=spec.scale, notes=[], option=option,
                           describe=lambda: f"ONNX graph of {option}")


def resolve_auto(cfg: DictConfig, source: str | None = None, scale: int | None = None,
                 fallback_scale: int | None = None, keep_weights: bool = True):
    """Replace ``cfg.model`` (``model=auto``) by the model config of the network in ``source`` (default
    ``cfg.model.weights``) and set ``cfg.scale`` to the network's scale; returns the
    :class:`~src.weights.detection.Detection`.

    ``scale``: the scale the user asked for (an error if the file holds another); ``fallback_scale``: the scale
    used when the file cannot tell it (bicubic-input SRCNN/VDSR, FSRCNN) and none was asked for — without one,
    that is an error naming ``scale=``. ``keep_weights=False`` leaves ``model.weights`` empty (the file came as
    ``ckpt_path``).
    """
    from src.methods.loading import LIGHTNING_NET_PREFIXES
    from src.weights.detection import detect_file
    from src.weights.files import WeightsError
    from src.zoo import resolve_weights

    auto = cfg.model
    source = source or auto.get("weights")
    if not source:
        raise ConfigError("model=auto reads the network from a weights file: pass model.weights=<file or name>")
    source = str(resolve_weights(source))  # a file, or a model name of `python -m src.download list`
    if source.lower().endswith(".onnx"):
        return _resolve_onnx(cfg, source, scale, fallback_scale)
    given = {str(k): v for k, v in (OmegaConf.to_container(auto.get("arch") or {}, resolve=True)).items()}
    try:
        found = detect_file(source, given, scale, LIGHTNING_NET_PREFIXES)
    except WeightsError as exc:
        raise ConfigError(str(exc).replace("\n", " ")) from None
    if found.entry.scale_arg and scale is not None and found.scale != int(scale):
        raise ConfigError(f"{source} holds an x{found.scale} {found.entry.name}, but scale={scale} was given: "
                          f"drop scale= (or pass scale={found.scale})")
    net_scale = found.scale
    if net_scale is None:
        if fallback_scale is None:
            raise ConfigError(f"{source} holds {found.entry.name} (bicubic-upsampled input), and the file does not "
                              f"say for which scale: pass scale=<s>")
        net_scale = int(fallback_scale)
        found.notes.append(f"scale={net_scale} (scale=<s> to change)")
    option = auto.get("option") or found.option
    if option not in _options():
        raise ConfigError(f"model.option={option!r}: expected a conf/model option ({', '.join(_options())})")
    model = compose_model_option(option).model
    with open_dict(model):
        model.arch = found.arch
        model.input = found.input
        model.color = found.color
        model.weights = str(source) if keep_weights else None
    with open_dict(cfg):
        cfg.model = model
        cfg.scale = net_scale
    log.info("model=auto: %s holds %s; recipe of model=%s", source, found.describe(), option)
    if found.notes:
        log.info("model=auto: not in the file, so assumed: %s", "; ".join(found.notes))
    return found
