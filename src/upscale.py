"""Super-resolve your own images: ``python -m src.upscale input=<file|folder|glob> output=<dir> model=<m>
model.weights=<file or ckpt>``.

See ``conf/upscale.yaml`` for the settings. Per image: read (grayscale, RGB, RGBA, 8 or 16 bits), run the network
tile by tile (``src.inference.tiling``; optionally inside the x8 self-ensemble), optionally back-project, then
write ``<output>/<stem><suffix>.png`` with the input's channel layout and bit depth. Grayscale images go through
the network as RGB and come back as luma; an alpha channel is upscaled separately (MATLAB bicubic) and
re-attached. Existing outputs are never overwritten unless ``overwrite=true``; a rerun with the same settings
resumes (``src.storage.output_folders``): finished outputs are kept, unreadable inputs are skipped and listed, and the
run then fails.
"""

from __future__ import annotations

import glob
import logging
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from src.config.schema import UpscaleConfig
from src.config.validation import (
    ConfigError,
    check_schema_keys,
    drop_training_groups,
    exit_on_user_error,
    validate,
)
from src.data.checks import check_image, check_images
from src.storage.atomic import atomic_write, check_writable
from src.storage.output_folders import BadInputsError, file_stamp, record_settings, same_settings
from src.zoo import resolve_weight_keys

log = logging.getLogger(__name__)

POSTPROCESS = ("none", "back_projection")
PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's convert("L"): RGB output -> grayscale output
DEFAULT_SCALE = 4
USAGE = "usage: python -m src.upscale input=<file|folder|glob> output=<dir> model=<m> [model.weights=<file>]"


class OutputExistsError(ValueError):
    """An output file exists and ``overwrite`` is false."""


# ---- inputs and outputs -----------------------------------------------------------------------------------------
def resolve_inputs(spec: str | Iterable[str]) -> list[Path]:
    """Image files named by ``spec``: a file, a folder (its images, sorted), a glob pattern, or a list of these."""
    from src.data.image_io import IMAGE_SUFFIXES, list_images

    if isinstance(spec, (list, tuple, ListConfig)):
        paths = [p for item in spec for p in resolve_inputs(str(item))]
    else:
        spec = str(spec)
        path = Path(spec).expanduser()
        if path.is_dir():
            paths = list_images(path)
            if not paths:
                raise FileNotFoundError(f"input={spec}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        elif path.is_file():
            paths = [path]
        elif glob.has_magic(spec):
            paths = sorted(
                Path(p) for p in glob.glob(str(path), recursive=True)
                if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES
            )
            if not paths:
                raise FileNotFoundError(f"input={spec}: the pattern matches no image files")
        else:
            raise FileNotFoundError(f"input={spec}: no such file or folder")
    unique: dict[Path, None] = {}
    for p in paths:
        unique.setdefault(p, None)
    return list(unique)


def output_path(out_dir: str | Path, src: Path, suffix: str) -> Path:
    """``<out_dir>/<stem><suffix>.png`` (always PNG: lossless, and it holds 16-bit and alpha)."""
    return Path(out_dir) / f"{src.stem}{suffix}.png"


def plan_outputs(inputs: list[Path], out_dir: str | Path, suffix: str, overwrite: bool,
                 resume: bool = False) -> list[Path]:
    """Output paths of ``inputs``; refuses (before any work) collisions, writing over an input, and existing
    files unless ``overwrite`` or ``resume`` (the folder was written with the same settings: they are kept)."""
    outputs = [output_path(out_dir, p, suffix) for p in inputs]
    seen: dict[Path, Path] = {}
    for src, dst in zip(inputs, outputs):
        if dst in seen:
            raise ValueError(f"{seen[dst]} and {src} would both be written to {dst}: upscale them separately")
        seen[dst] = src
        if dst.resolve() == src.resolve():
            raise ValueError(f"output {dst} is the input file itself: choose another output folder or suffix")
    existing = [p for p in outputs if p.exists()]
    if existing and not (overwrite or resume):
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputExistsError(f"output file {existing[0]} already exists{more} (written with other settings, or "
                                f"not by src.upscale): pass overwrite=true to replace it")
    return outputs


@dataclass
class InputImage:
    """An image as read for upscaling: ``pixels`` (1 or 3, H, W) float32 in [0, 1], ``alpha`` (1, H, W) or None,
    and the file's bit depth (8 or 16), which the output keeps."""

    pixels: torch.Tensor
    alpha: torch.Tensor | None
    bit_depth: int


def _png_header(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) of a PNG file, ``None`` for other files."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def read_input(path: str | Path) -> InputImage:
    """Read an image with its alpha channel and bit depth (``src.data.image_io.load_image`` drops alpha)."""
    from PIL import Image

    from src.data.image_io import load_image

    path = Path(path)
    header = _png_header(path)
    if header is not None and header[0] == 16:  # any 16-bit PNG (gray, gray+alpha, RGB, RGBA): torchvision
        from torchvision.io import ImageReadMode, decode_png, read_file

        data = decode_png(read_file(str(path)), mode=ImageReadMode.UNCHANGED)
        arr = (data.to(torch.float64) / 65535.0).to(torch.float32)
        bit_depth = 16
    else:
        with Image.open(path) as img:
            has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
            gray = img.mode in ("L", "LA", "La", "1") or img.mode.startswith("I")
            if not has_alpha:
                bit_depth = 16 if img.mode.startswith("I;16") or img.mode == "I" else 8
                return InputImage(load_image(path), None, bit_depth)
            img.load()
            rgba = np.asarray(img.convert("LA" if gray else "RGBA"), dtype=np.float32) / 255.0
        arr = torch.from_numpy(np.ascontiguousarray(rgba)).permute(2, 0, 1).contiguous()
        bit_depth = 8
    if arr.shape[0] in (2, 4):
        return InputImage(arr[:-1].contiguous(), arr[-1:].contiguous(), bit_depth)
    return InputImage(arr, None, bit_depth)


def to_integer_array(pixels: torch.Tensor, alpha: torch.Tensor | None, bit_depth: int,
                     rows: int = 256) -> np.ndarray:
    """(C, H, W) float [0, 1] (+ alpha) -> uint8/uint16 array (H, W, C[+1]), rounded, converted ``rows`` rows at
    a time so that a large output needs no full-size float temporaries."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    planes = [pixels] if alpha is None else [pixels, alpha]
    channels = sum(p.shape[0] for p in planes)
    h, w = pixels.shape[-2:]
    peak, dtype = (255.0, np.uint8) if bit_depth == 8 else (65535.0, np.uint16)
    out = np.empty((h, w, channels), dtype=dtype)
    for r in range(0, h, rows):
        chunk = torch.cat([p[:, r : r + rows].detach().float().cpu() for p in planes], dim=0)
        out[r : r + rows] = chunk.clamp_(0, 1).mul_(peak).round_().permute(1, 2, 0).numpy().astype(dtype)
    return out


def _write_png16(data: np.ndarray, path: Path, rows: int = 256) -> None:
    """16-bit PNG of a uint16 array (H, W, C), C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; compressed as a stream,
    ``rows`` rows at a time (PIL writes 16-bit grayscale only)."""
    import struct
    import zlib

    h, w, c = data.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    compressor = zlib.compressobj(6)
    parts = []
    for r in range(0, h, rows):
        block = np.ascontiguousarray(data[r : r + rows], dtype=">u2").view(np.uint8).reshape(-1, w * c * 2)
        filtered = np.concatenate([np.zeros((block.shape[0], 1), np.uint8), block], axis=1)  # filter 0 per row
        parts.append(compressor.compress(filtered.tobytes()))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    with atomic_write(path) as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header))
        f.write(chunk(b"IDAT", b"".join(parts)))
        f.write(chunk(b"IEND", b""))


def write_output(path: str | Path, pixels: torch.Tensor, alpha: torch.Tensor | None, bit_depth: int) -> None:
    """Write ``pixels`` (1|3, H, W) [+ ``alpha`` (1, H, W)] in [0, 1] as an 8- or 16-bit PNG (gray, gray+alpha,
    RGB or RGBA, as given), atomically (a temporary file in the same folder, renamed when complete)."""
    from PIL import Image

    if pixels.ndim != 3 or pixels.shape[0] not in (1, 3):
        raise ValueError(f"write_output expects a (1|3, H, W) tensor, got shape {tuple(pixels.shape)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = to_integer_array(pixels, alpha, bit_depth)
    if bit_depth == 16:
        _write_png16(data, path)
    else:
        with atomic_write(path) as fh:
            Image.fromarray(data[..., 0] if data.shape[2] == 1 else data).save(fh, format="PNG")


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


def to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """(…, 3, H, W) -> (…, 1, H, W) with BT.601 luma weights (gray in, gray out: R = G = B gives back the gray)."""
    r, g, b = rgb.unbind(dim=-3)
    return (r * LUMA[0]).add_(g, alpha=LUMA[1]).add_(b, alpha=LUMA[2]).unsqueeze(-3)


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
            sr = to_gray(sr)
        if alpha is not None:
            alpha = imresize(alpha.float().unsqueeze(0), float(s.scale))[0].clamp_(0, 1)
        return sr, alpha


# ---- the entry point ---------------------------------------------------------------------------------------------
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

    from src.weights.checkpoints import read_hparams

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


def output_bytes(image, scale: int) -> int:
    """Upper bound of the PNG written for ``image`` at ``scale``: the raw samples (PNG's deflate only shrinks
    them; the stored-block worst case adds < 0.1 %) plus 64 KiB for headers."""
    h, w = image.pixels.shape[-2:]
    channels = image.pixels.shape[-3] + (0 if image.alpha is None else 1)
    raw = h * scale * w * scale * channels * (2 if image.bit_depth == 16 else 1)
    return int(raw * 1.001) + 2**16


def upscale(cfg: DictConfig) -> list[Path]:
    """Super-resolve every input of ``cfg`` (see ``conf/upscale.yaml``); returns the written files."""
    from src.inference import size_multiple
    from src.inference.tiling import min_input_size
    from src.weights.checkpoints import build_eval_model

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
    model = build_eval_model(cfg.model, scale, None, ckpt_key=None).to(device).eval()
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


@hydra.main(version_base="1.3", config_path="../conf", config_name="upscale")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    upscale(cfg)


if __name__ == "__main__":
    from src.config.command_line import check_command_line
    from src.config.completion import handle_shell_completion

    handle_shell_completion("src.upscale")
    check_command_line("src.upscale", "upscale")
    main()
