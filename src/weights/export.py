"""Weights files and graphs for other programs, as ``python -m src.export`` writes them (settings:
``conf/export.yaml``).

``ckpt`` is one of our Lightning checkpoints (``…/checkpoints/best.ckpt``; an EMA copy, when the checkpoint has
one, becomes ``params_ema``) or any weights file :mod:`src.weights.checkpoints` reads (official EDSR/RCAN/ESRGAN/
CARN/IMDN/WDSR layouts, VDSR/LapSRN ``.mat``, ``.safetensors`` …). Formats (default: from the output's suffix):

- ``pth``: ``{'params': …, 'params_ema': …, 'srsuite': …}`` in the key layout most clients read for that
  network (``layout=auto``; RCAN: the official names chaiNNer/spandrel recognise; ``layout=basicsr`` forces
  BasicSR's), see :mod:`src.weights.writing`; the printed line names the programs that read the file.
  ``srsuite`` holds the network's constructor arguments and scale, so ``model=auto`` rebuilds it exactly;
- ``safetensors``: the flat (EMA) state dict, ``srsuite`` as JSON metadata;
- ``onnx``: the network as an ONNX graph (opset 17, dynamic batch/height/width) with its input conventions in
  ``metadata_props`` (scale, colour, input, input range), checked with onnxruntime on two input sizes;
- ``torchscript``: ``torch.jit.trace`` of the network, conventions in ``_extra_files``, checked the same way.

``half=true`` writes fp16 weights (and fp16 graph inputs/outputs), for GPUs. ONNX/TorchScript exports need the
network: a Lightning checkpoint brings it; a plain weights file needs ``model=<conf/model option>`` (and
``scale=``, ``model.<key>=…`` overrides as in ``evaluate``). See :mod:`src.weights.deploy` for what is exported.
An existing ``output`` is an error unless ``overwrite=true``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from src.config.schema import ExportConfig
from src.config.validation import ConfigError, check_schema_keys
from src.methods.loading import LIGHTNING_NET_PREFIXES
from src.weights.checkpoints import WeightsError, read_weights
from src.weights.containers import lightning_weights
from src.weights.detection import detect_file
from src.weights.files import read_file, read_hparams
from src.weights.writing import export_weights, metadata

LAYOUTS = ("auto", "basicsr")
FORMATS = ("pth", "safetensors", "onnx", "torchscript")
SUFFIX_FORMATS = {".safetensors": "safetensors", ".onnx": "onnx", ".ts": "torchscript", ".torchscript": "torchscript"}


def check_settings(cfg: DictConfig) -> str:
    """Check the composed ``conf/export.yaml`` before anything is read; returns the format (``format``, else
    from the output's suffix)."""
    check_schema_keys(cfg, ExportConfig, "<root>")
    missing = [k for k in ("ckpt", "output") if cfg.get(k) in (None, "", "???")]
    if missing:
        raise ConfigError(f"missing {', '.join(f'{k}=…' for k in missing)} (usage: python -m src.export "
                          "ckpt=<checkpoint or weights file> output=<file> [format=pth|safetensors|onnx|torchscript])")
    for key in ("overwrite", "half"):
        if not isinstance(cfg[key], bool):
            raise ConfigError(f"{key}={cfg[key]!r}: expected true or false")
    fmt = cfg.format or SUFFIX_FORMATS.get(Path(str(cfg.output)).suffix.lower(), "pth")
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt!r}: expected one of {', '.join(FORMATS)}")
    if cfg.layout not in LAYOUTS:
        raise ConfigError(f"layout={cfg.layout!r}: expected one of {', '.join(LAYOUTS)}")
    if cfg.scale is not None and (isinstance(cfg.scale, bool) or not isinstance(cfg.scale, int) or cfg.scale < 1):
        raise ConfigError(f"scale={cfg.scale!r}: expected a positive integer")
    return fmt


def _half(state: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
    return None if state is None else {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def _refuse_existing(output: str | Path, overwrite: bool) -> None:
    if Path(output).exists() and not overwrite:
        raise FileExistsError(f"output file {output} already exists: pass overwrite=true to replace it")


def export(ckpt: str | Path, output: str | Path, overwrite: bool = False, half: bool = False,
           layout: str = "auto") -> Path:
    """Write ``ckpt``'s weights for other programs (``.pth``, or flat ``.safetensors``) at ``output``, with the
    ``srsuite`` metadata and the key layout of :func:`src.weights.writing.export_weights`; returns the written path.
    An existing ``output`` is a :class:`FileExistsError` unless ``overwrite``."""
    _refuse_existing(output, overwrite)
    obj = read_file(ckpt)
    meta = None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict) and "hyper_parameters" in obj:
        params, ema = lightning_weights(obj, LIGHTNING_NET_PREFIXES)
        what = "Lightning checkpoint" + (" with EMA weights" if ema is not None else "")
        hp = obj["hyper_parameters"]
        meta = metadata(hp["name"], hp["arch"], hp["scale"], hp["input"], hp["color"])
    else:
        params, what = read_weights(ckpt, net_prefixes=LIGHTNING_NET_PREFIXES)
        ema = None
        try:
            found = detect_file(ckpt, net_prefixes=LIGHTNING_NET_PREFIXES)
            meta = metadata(found.option, found.arch, found.scale, found.input, found.color)
        except WeightsError as exc:  # still written (BasicSR key names), without the network's description
            print(f"note: {exc}; the file is written without srsuite metadata (model=auto cannot read it)")
    if half:
        params, ema = _half(params), _half(ema)
    path, clients = export_weights(params, output, ema, meta, layout)
    network = f"{meta['arch']['_target_'].rsplit('.', 1)[-1]} x{meta['scale']}" if meta else "unidentified network"
    print(f"{ckpt} ({what}): {len(params)} tensors, {network} -> {path}; read by {clients}")
    return path


def build_network(ckpt: str | Path, model: str | None, scale: int | None, overrides: list[str]):
    """(network, :class:`~src.weights.deploy.ExportSpec`) of ``ckpt``: a Lightning checkpoint's own network, or the
    ``conf/model/<model>.yaml`` network at ``scale`` loaded with the weights file."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import src.config.validation  # noqa: F401  (resolvers)
    from src.inference import size_multiple
    from src.methods.loading import build_eval_model
    from src.weights.deploy import ExportSpec

    hparams = read_hparams(ckpt)
    if hparams is not None:
        model, scale = model or hparams.get("name"), scale or int(hparams["scale"])
    if not model:
        raise WeightsError(f"{ckpt} is a plain weights file: give model=<conf/model option> (and scale=) to export "
                           f"its network as ONNX/TorchScript")
    scale = int(scale or 4)
    evaluate_overrides = [f"model={model}", f"scale={scale}", *overrides]
    if hparams is None:
        evaluate_overrides.append(f"model.weights={ckpt}")
    if GlobalHydra.instance().is_initialized():  # inside python -m src.export: its search path is conf/
        cfg = compose("evaluate", overrides=evaluate_overrides)
    else:
        conf = Path(__file__).resolve().parents[2] / "conf"
        with initialize_config_dir(version_base="1.3", config_dir=str(conf)):
            cfg = compose("evaluate", overrides=evaluate_overrides)
    sr = build_eval_model(cfg.model, scale, str(ckpt) if hparams is not None else None)
    net = sr.net.eval()
    channels = 1 if sr.color == "y" else 3
    spec = ExportSpec(model=str(cfg.model.name), scale=scale, colour=sr.color, input=sr.input, channels=channels,
                      size_multiple=size_multiple(sr))
    return net, spec


def export_graph(ckpt: str | Path, output: str | Path, fmt: str, half: bool = False, model: str | None = None,
                 scale: int | None = None, overrides: list[str] | None = None, overwrite: bool = False) -> Path:
    """ONNX / TorchScript export of ``ckpt``'s network, checked against PyTorch; returns the written path."""
    from src.weights.deploy import export_onnx, export_torchscript

    _refuse_existing(output, overwrite)
    net, spec = build_network(ckpt, model, scale, overrides or [])
    write = export_onnx if fmt == "onnx" else export_torchscript
    diffs = write(net, output, spec, half=half)
    checked = ", ".join(f"{k}: max |Δ| {v:.2g}" for k, v in diffs.items()) or "not run (no fp16 kernels here)"
    print(f"{ckpt} ({spec.model} x{spec.scale}, {spec.colour}, input {spec.input}) -> {output} [{fmt}"
          f"{', fp16' if half else ''}]; check vs PyTorch: {checked}")
    return Path(output)


def run_export(cfg: DictConfig, model: str | None = None, overrides: list[str] | None = None) -> Path:
    """The job of ``python -m src.export``: ``cfg`` is the composed ``conf/export.yaml``, ``model`` the
    ``model=`` option given (``None``: none) and ``overrides`` the ``model.<key>=…`` arguments; returns the
    written path."""
    fmt = check_settings(cfg)
    ckpt, output, overrides = str(cfg.ckpt), str(cfg.output), list(overrides or [])
    if fmt in ("pth", "safetensors"):
        if (fmt == "safetensors") != output.lower().endswith(".safetensors"):
            raise WeightsError(f"format={fmt} needs an output ending in "
                               f"{'.safetensors' if fmt == 'safetensors' else '.pth'}")
        if model or cfg.scale is not None or overrides:
            raise WeightsError("model= / scale= / model.<key>= only apply to format=onnx|torchscript")
        return export(ckpt, output, cfg.overwrite, cfg.half, cfg.layout)
    return export_graph(ckpt, output, fmt, cfg.half, model, cfg.scale, overrides, cfg.overwrite)
