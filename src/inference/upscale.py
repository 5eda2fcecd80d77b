"""Super-resolution of image files, as ``python -m src.upscale`` runs it (settings: ``conf/upscale.yaml``).

Per image: read (grayscale, RGB, RGBA, 8 or 16 bits; :mod:`src.inference.image_files`), run the network tile by
tile (``src.inference.tiling``; optionally inside the x8 self-ensemble), optionally back-project, then write
``<output>/<stem><suffix>.png`` with the input's channel layout and bit depth. Grayscale images go through the
network as RGB and come back as luma; an alpha channel is upscaled separately (MATLAB bicubic) and re-attached.
Existing outputs are never overwritten unless ``overwrite=true``; a rerun with the same settings resumes
(``src.data.output_folders``): finished outputs are kept, unreadable inputs are skipped and listed, and the run
then fails.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from src.config.schema import UpscaleConfig
from src.config.validation import ConfigError, check_schema_keys, drop_training_groups, validate
from src.data.checks import check_image, check_images
from src.data.output_folders import BadInputsError, file_stamp, record_settings, same_settings
from src.imaging.colorspace import rgb_to_luma_bt601
from src.inference.image_files import (
    OutputExistsError,
    output_bytes,
    plan_outputs,
    read_input,
    resolve_inputs,
    write_output,
)
from src.storage.atomic import check_writable
from src.zoo import resolve_weight_keys

log = logging.getLogger(__name__)

POSTPROCESS = ("none", "back_projection")
PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
DEFAULT_SCALE = 4
USAGE = "usage: python -m src.upscale input=<file|folder|glob> output=<dir> model=<m> [model.weights=<file>]"


# ---- running the network ---------------------------------------------------------------------------------------
def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device={name!r}: expected auto, cpu, cuda or cuda:N ({exc})") from exc


class ModelRunner:
    """Calls the model on one tile: moves it to ``device``, runs under autocast for fp16/bf16, and reruns in fp32
    any output that is not finite (networks that overflow in half precision), with a warning.

    ``fallbacks`` counts those reruns; ``calls`` all calls.
    """

    def __init__(self, model: torch.nn.Module, device: torch.device, dtype: torch.dtype | None = None) -> None:
        self.model = model
        self.device = device
        self.dtype = dtype
        self.calls = 0
        self.fallbacks = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, torch.float32, non_blocking=True)
        self.calls += 1
        if self.dtype is None:
            return self.model(x).float()
        with torch.autocast(device_type=self.device.type, dtype=self.dtype):
            y = self.model(x)
        if bool(torch.isfinite(y).all()):
            return y.float()
        self.fallbacks += 1
        if self.fallbacks == 1:
            name = {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(self.dtype, str(self.dtype))
            warnings.warn(
                f"the network produced NaN/inf in {name}: rerunning the affected tiles in fp32 "
                f"(precision=fp32 avoids the wasted half-precision pass for this network)",
                RuntimeWarning,
                stacklevel=2,
            )
        del y
        return self.model(x).float()


@dataclass
class UpscaleSettings:
    scale: int
    tile: int = 512
    tile_overlap: int = 32
    pre_pad: int = 0
    ensemble: bool = False
    postprocess: str = "none"
    bp_iterations: int = 10
    progress: bool = False


class Upscaler:
    """LR image (C, H, W) -> SR image (C, sH, sW) with everything but file I/O: gray/alpha handling, tiling,
    self-ensemble and back-projection. ``runner`` maps an RGB tile batch to its SR output (:class:`ModelRunner`)."""

    def __init__(self, runner, settings: UpscaleSettings, mod: int = 1, min_size: int = 1) -> None:
        self.runner = runner
        self.settings = settings
        self.mod = mod
        self.min_size = min_size  # smaller images are padded to it (the network's receptive field)
        self.device = getattr(runner, "device", torch.device("cpu"))

    def network(self, rgb: torch.Tensor, desc: str = "") -> torch.Tensor:
        """(1, 3, H, W) -> (1, 3, sH, sW) float32 on the CPU: tiles, ensemble inside each tile."""
        from src.inference import self_ensemble, tiled_forward

        s = self.settings
        fn = partial(self_ensemble, self.runner) if s.ensemble else self.runner
        progress = None
        if s.progress:
            from tqdm import tqdm

            def progress(it, total):
                return tqdm(it, total=total, desc=f"  tiles {desc}".rstrip(), unit="tile", leave=False,
                            disable=total <= 1)

        return tiled_forward(fn, rgb, s.scale, s.tile, s.tile_overlap, s.pre_pad, self.mod, progress, "cpu",
                             min_size=self.min_size)

    def __call__(self, pixels: torch.Tensor, alpha: torch.Tensor | None = None,
                 desc: str = "") -> tuple[torch.Tensor, torch.Tensor | None]:
        from src.degradations import imresize
        from src.inference import back_project_tiled

        s = self.settings
        if pixels.ndim != 3 or pixels.shape[0] not in (1, 3):
            raise ValueError(f"expected a (1|3, H, W) image, got shape {tuple(pixels.shape)}")
        gray = pixels.shape[0] == 1
        lr = pixels.float().expand(3, -1, -1).unsqueeze(0)
        sr = self.network(lr, desc)
        if s.postprocess == "back_projection" and s.bp_iterations > 0:
            sr = back_project_tiled(sr, lr, s.scale, s.bp_iterations, s.tile, self.device)
        sr = sr.clamp_(0, 1)[0]
        if gray:
            sr = rgb_to_luma_bt601(sr)  # as PIL's convert("L")
        if alpha is not None:
            alpha = imresize(alpha.float().unsqueeze(0), float(s.scale))[0].clamp_(0, 1)
        return sr, alpha


# ---- the job -----------------------------------------------------------------------------------------------------
def _int(cfg: DictConfig, key: str, minimum: int) -> int:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key}={value!r}: expected an integer >= {minimum}")
    return value


def check_settings(cfg: DictConfig) -> None:
    """Validate the composed config (keys and values) before anything is loaded."""
    validate(cfg, UpscaleConfig, trainer_key=None)
    for key in ("input", "output"):
        if OmegaConf.is_missing(cfg, key) or cfg[key] in (None, ""):
            raise ConfigError(f"{key}=… is required. {USAGE}")
    tile, overlap = _int(cfg, "tile", 0), _int(cfg, "tile_overlap", 0)
    _int(cfg, "pre_pad", 0)
    _int(cfg, "bp_iterations", 0)
    if tile and overlap >= tile:
        raise ConfigError(f"tile_overlap={overlap} must be smaller than tile={tile} (or tile=0: no tiling)")
    if cfg.scale is not None:
        _int(cfg, "scale", 1)
    if cfg.postprocess not in POSTPROCESS:
        raise ConfigError(f"postprocess={cfg.postprocess!r}: expected one of {', '.join(POSTPROCESS)}")
    if cfg.precision not in PRECISIONS:
        raise ConfigError(f"precision={cfg.precision!r}: expected one of {', '.join(PRECISIONS)}")
    for key in ("ensemble", "overwrite", "progress"):
        if not isinstance(cfg[key], bool):
            raise ConfigError(f"{key}={cfg[key]!r}: expected true or false")


def resolve_model(cfg: DictConfig) -> None:
    """``model=auto`` (the default): the network in ``model.weights`` (``src.weights.auto_model``; it also sets
    ``scale``); MATLAB bicubic when no weights are given."""
    from src.weights.auto_model import compose_model_option, is_auto, resolve_auto

    if not is_auto(cfg.model):
        return
    if cfg.model.get("weights"):
        resolve_auto(cfg, scale=cfg.scale if isinstance(cfg.scale, int) else None)
    else:
        with open_dict(cfg):
            cfg.model = compose_model_option("bicubic").model
        log.info("no model.weights given: MATLAB bicubic (model=bicubic)")


def resolve_scale(cfg: DictConfig) -> int:
    """``scale``, else the scale of a Lightning checkpoint given as ``model.weights``, else 4."""
    from hydra.utils import get_class

    from src.weights.files import read_hparams

    if cfg.scale is not None:
        return cfg.scale  # checked by check_settings
    weights = cfg.model.get("weights")
    if weights and getattr(get_class(cfg.model._target_), "trainable", True):
        hparams = read_hparams(weights)
        if hparams and hparams.get("scale"):
            return int(hparams["scale"])
    return DEFAULT_SCALE


def _precision(name: str, device: torch.device) -> torch.dtype | None:
    dtype = PRECISIONS[name]
    if dtype is torch.float16 and device.type == "cpu":
        warnings.warn("precision=fp16 is for GPUs (CPU fp16 kernels are slow or missing): running fp32 on the CPU",
                      RuntimeWarning, stacklevel=2)
        return None
    return dtype



def upscale(cfg: DictConfig) -> list[Path]:
    """Super-resolve every input of ``cfg`` (see ``conf/upscale.yaml``); returns the written files."""
    from src.inference import size_multiple
    from src.inference.tiling import min_input_size
    from src.methods.loading import build_eval_model

    drop_training_groups(cfg)
    check_schema_keys(cfg, UpscaleConfig, "<root>")  # a misspelled key before any download
    resolve_weight_keys(cfg.model, "weights")  # a file or a model name (src.zoo)
    resolve_model(cfg)
    cfg.scale = resolve_scale(cfg)  # before the value checks: the model config interpolates ${scale}
    check_settings(cfg)
    inputs = resolve_inputs(cfg.input)
    scale = int(cfg.scale)
    suffix = f"_x{scale}" if cfg.suffix is None else str(cfg.suffix)
    # unresolved: the model config may refer to training keys this entry point lacks (trainer.max_steps)
    run_settings = {"model": OmegaConf.to_container(cfg.model, resolve=False), "scale": scale, "suffix": suffix,
                    "weights": file_stamp(cfg.model.get("weights")),
                    **{k: cfg[k] for k in ("tile", "tile_overlap", "pre_pad", "ensemble", "postprocess",
                                           "bp_iterations", "precision", "channels_last")}}
    resume = not cfg.overwrite and same_settings(cfg.output, "upscale", run_settings)
    outputs = plan_outputs(inputs, cfg.output, suffix, cfg.overwrite, resume)
    existing = [dst for dst in outputs if resume and dst.exists()]
    damaged = check_images(existing, what="existing output")  # an interrupted write is redone
    done = {dst for dst in existing if dst not in damaged}
    for folder in dict.fromkeys(dst.parent for dst in outputs):
        check_writable(folder, what="output")  # before any model is loaded or image computed
    device = pick_device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={cfg.device}: no CUDA device is available here (device=auto picks one if present)")
    model = build_eval_model(cfg.model, scale, None, ckpt_key=None, channels_last=cfg.channels_last).to(device).eval()
    runner = ModelRunner(model, device, _precision(cfg.precision, device))
    settings = UpscaleSettings(
        scale=scale, tile=cfg.tile, tile_overlap=cfg.tile_overlap, pre_pad=cfg.pre_pad, ensemble=cfg.ensemble,
        postprocess=cfg.postprocess, bp_iterations=cfg.bp_iterations, progress=cfg.progress,
    )
    upscaler = Upscaler(runner, settings, mod=size_multiple(model), min_size=min_input_size(model))
    log.info("%s x%d on %s (%s), tile=%s overlap=%s, ensemble=%s, postprocess=%s: %d image(s) -> %s",
             cfg.model.name, scale, device, cfg.precision, cfg.tile, cfg.tile_overlap, cfg.ensemble,
             cfg.postprocess, len(inputs), cfg.output)
    if done:
        log.info("resuming: %d of %d output(s) already written with these settings are kept", len(done), len(outputs))
    pairs: Iterable[tuple[Path, Path]] = [(a, b) for a, b in zip(inputs, outputs) if b not in done]
    if pairs:
        record_settings(cfg.output, "upscale", run_settings)
    if cfg.progress and len(pairs) > 1:
        from tqdm import tqdm

        pairs = tqdm(pairs, desc="images", unit="img")
    written, bad = [], {}
    with torch.inference_mode():
        for src, dst in pairs:
            start = time.perf_counter()
            runner.calls = runner.fallbacks = 0
            try:
                image = read_input(src)
            except Exception as exc:  # noqa: BLE001 - any unreadable input: name it, go on with the others
                bad[src] = check_image(src) or f"cannot be read: {str(exc).splitlines()[0] if str(exc) else exc!r}"
                log.warning("skipping %s: %s", src, bad[src])
                continue
            check_writable(dst.parent, output_bytes(image, scale), what="output", probe=False)
            sr, alpha = upscaler(image.pixels, image.alpha, desc=src.name)
            if dst.exists() and not (cfg.overwrite or resume):  # appeared while we worked
                raise OutputExistsError(f"output file {dst} already exists: pass overwrite=true to replace it")
            write_output(dst, sr, alpha, image.bit_depth)
            written.append(dst)
            h, w = image.pixels.shape[-2:]
            extra = f", {runner.fallbacks}/{runner.calls} tiles rerun in fp32" if runner.fallbacks else ""
            log.info("%s %dx%d -> %dx%d in %.2f s%s -> %s", src.name, w, h, sr.shape[-1], sr.shape[-2],
                     time.perf_counter() - start, extra, dst)
    kept = f", kept {len(done)} from an earlier run with the same settings" if done else ""
    print(f"Wrote {len(written)} image(s) to {cfg.output}{kept}")
    if bad:
        raise BadInputsError(bad, len(inputs), f"the other {len(inputs) - len(bad)} are in {cfg.output}")
    return written
