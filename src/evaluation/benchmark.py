"""Benchmark sets in the standard layout, and scoring a method over them with the paper protocol.

Layout (any set name works: Set5, Set14, BSD100, Urban100, Manga109, your own)::

    <root>/<Set>/HR/<name>.png
    <root>/<Set>/LR_bicubic/X<s>/<name>.png     optional; same file names (or EDSR's <stem>x<s>.png); MATLAB
                                                bicubic of modcrop(HR, s)

Two choices of the protocol are made here (``benchmarks.*`` of ``conf/evaluate.yaml``; presets in
``conf/protocol/``): ``gray`` — a one-channel ground truth (Set14's ``bridge.png``) stays gray (``as_gray``: scored on
its gray values, as the SRCNN/VDSR MATLAB code does) or is read as RGB with three equal channels (``as_rgb``: scored
on the Y of that RGB, 16 + 219/255 · gray, as code that reads every file as RGB does: IMDN's ``cv2.imread``, LapSRN's
copy of Set14); ``quantize_lr`` — the generated LR is rounded to 8-bit levels like the published LR files (``true``)
or kept as MATLAB ``imresize`` of the double HR (``false``: LapSRN's evaluation code).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from src.data.image_io import list_images, load_image
from src.degradations import imresize, modcrop
from src.evaluation.results import ImageScore
from src.metrics.suite import MetricSuite

LR_MODES = ("auto", "files", "generate")
GRAY_MODES = ("as_gray", "as_rgb")
MATLAB_MODES = ("current", "legacy")
LAYOUT = "<root>/<Set>/HR/<name>.png  [+ <root>/<Set>/LR_bicubic/X<s>/<name>.png]"


@dataclass
class BenchmarkImage:
    """One benchmark image: ``hr`` float (C, H, W) in [0, 1] modcropped to the scale (C = 1 for gray
    files), ``lr`` float (C, H/s, W/s), and whether the LR came from a file or from our imresize."""

    name: str
    hr: torch.Tensor
    lr: torch.Tensor
    lr_source: str

log = logging.getLogger(__name__)


def generate_lr(hr: torch.Tensor, scale: int, matlab: str = "current", quantize: bool = True) -> torch.Tensor:
    """MATLAB-bicubic LR (C, H/s, W/s) of a modcropped HR (C, H, W) in [0, 1], rounded to 8-bit levels like the
    published files (``quantize=False``: the float ``imresize`` output as it is, not clamped).

    ``matlab="current"``: today's ``imresize`` (mirror boundary, float arithmetic). ``"legacy"``: the older
    MATLAB that made the classic Set5/Set14 LR files (replicated boundary, each pass rounded to uint8);
    it reproduces those files bit for bit (experiments/baselines/imresize_vs_matlab.md).
    """
    if matlab == "current":
        lr = imresize(hr, 1.0 / scale)
    elif matlab == "legacy":
        lr = imresize(hr, 1.0 / scale, boundary="replicate", emulate_uint8=True)
    else:
        raise ValueError(f"benchmarks.matlab={matlab!r}: expected 'current' or 'legacy'")
    return (lr.clamp(0, 1) * 255.0).round() / 255.0 if quantize else lr


def benchmark_options(node) -> dict:
    """The LR / ground-truth options of a ``benchmarks`` config node as keyword arguments of
    :func:`load_benchmark_set`, checked: ``lr``, ``matlab``, ``gray`` (one of their choices) and ``quantize_lr``
    (a boolean; ``false`` needs ``lr=generate``: LR files are 8-bit). Raises :class:`ConfigError` naming the key."""
    from src.config.validation import ConfigError

    options = {"lr_mode": node.get("lr", "auto"), "matlab": node.get("matlab", "current"),
               "gray": node.get("gray", "as_gray"), "quantize_lr": node.get("quantize_lr", True)}
    for key, value, choices in (("lr", options["lr_mode"], LR_MODES), ("matlab", options["matlab"], MATLAB_MODES),
                                ("gray", options["gray"], GRAY_MODES)):
        if value not in choices:
            raise ConfigError(f"benchmarks.{key}={value!r}: expected one of {', '.join(choices)}")
    if not isinstance(options["quantize_lr"], bool):
        raise ConfigError(f"benchmarks.quantize_lr={options['quantize_lr']!r}: expected true or false")
    if not options["quantize_lr"] and options["lr_mode"] != "generate":
        raise ConfigError(f"benchmarks.quantize_lr=false needs benchmarks.lr=generate (got {options['lr_mode']}): "
                          "LR files hold 8-bit values")
    return options


def load_benchmark_set(
    root: str | Path, set_name: str, scale: int, lr_mode: str = "auto", matlab: str = "current",
    gray: str = "as_gray", quantize_lr: bool = True,
) -> list[BenchmarkImage]:
    """Read ``<root>/<set_name>`` at ``scale``. ``lr_mode``: ``auto`` uses LR files when the folder exists and
    generates them otherwise; ``files`` requires them; ``generate`` always makes them with our imresize
    (``matlab`` selects the imresize flavour, ``quantize_lr`` the 8-bit rounding, see :func:`generate_lr`).
    ``gray="as_rgb"``: a one-channel HR (and its LR) is read as three equal channels (see the module docstring)."""
    if lr_mode not in LR_MODES:
        raise ValueError(f"benchmarks.lr={lr_mode!r}: expected one of {LR_MODES}")
    if gray not in GRAY_MODES:
        raise ValueError(f"benchmarks.gray={gray!r}: expected one of {GRAY_MODES}")
    set_dir = Path(root) / set_name
    hr_dir = set_dir / "HR"
    if not hr_dir.is_dir():
        raise FileNotFoundError(
            f"benchmark set {set_name!r}: folder not found: {hr_dir.resolve()}\n"
            f"Expected layout: {LAYOUT} (set benchmarks.root=<dir>)"
        )
    lr_dir = set_dir / "LR_bicubic" / f"X{scale}"
    use_files = lr_mode == "files" or (lr_mode == "auto" and lr_dir.is_dir())
    if lr_mode == "files" and not lr_dir.is_dir():
        raise FileNotFoundError(f"benchmarks.lr=files but {lr_dir.resolve()} does not exist")
    images = []
    for hr_path in list_images(hr_dir):
        hr = modcrop(load_image(hr_path), scale)
        if gray == "as_rgb" and hr.shape[0] == 1:
            hr = hr.expand(3, -1, -1).contiguous()
        if use_files:
            lr_path = lr_dir / hr_path.name
            if not lr_path.is_file():  # EDSR's benchmark.tar names them <stem>x<s>.png
                lr_path = lr_dir / f"{hr_path.stem}x{scale}{hr_path.suffix}"
            if not lr_path.is_file():
                raise FileNotFoundError(f"LR file missing for {hr_path.name}: expected {lr_dir / hr_path.name}")
            lr = load_image(lr_path, channels=hr.shape[0] if hr.shape[0] == 3 else None)
            if lr.shape[0] != hr.shape[0]:
                lr = lr.mean(0, keepdim=True) if hr.shape[0] == 1 else lr.expand(3, -1, -1)
            expected = (hr.shape[-2] // scale, hr.shape[-1] // scale)
            if tuple(lr.shape[-2:]) != expected:
                raise ValueError(
                    f"{lr_path}: LR size {tuple(lr.shape[-2:])}, expected {expected} = modcrop(HR, {scale}) / {scale}"
                )
            images.append(BenchmarkImage(hr_path.name, hr, lr, "file"))
        else:
            images.append(BenchmarkImage(hr_path.name, hr, generate_lr(hr, scale, matlab, quantize_lr),
                                         "imresize"))
    if not images:
        raise FileNotFoundError(f"no images in {hr_dir.resolve()}")
    return images


@torch.no_grad()
def score_set(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: list[BenchmarkImage],
    method: str,
    set_name: str,
    scale: int,
    suite: MetricSuite | None = None,
    device: torch.device | str = "cpu",
    keep_outputs: set[str] | None = None,
    progress: bool = False,
) -> tuple[list[ImageScore], dict[str, torch.Tensor]]:
    """Run ``model`` (LR (1, 3, h, w) -> SR (1, 3, sh, sw), floats in [0, 1]) on every image and score it
    with ``suite`` (PSNR/SSIM on Y with MATLAB rounding by default).

    Gray images are fed as 3 equal channels and scored on gray values. Each image's inference wall time
    (after one warm-up call, CUDA-synchronised) is recorded as ``seconds``. Returns the per-image scores and the
    SR outputs (C, H, W, on the CPU) of the images named in ``keep_outputs``. ``progress``: a bar on a terminal
    and, on any console, one log line per set with its time.
    """
    suite = suite or MetricSuite()
    scores, kept = [], {}
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    started = time.perf_counter()
    items = enumerate(images)
    if progress:
        from tqdm import tqdm

        items = tqdm(items, total=len(images), desc=f"{method} {set_name} x{scale}", unit="img", leave=False,
                     disable=None)  # None: only on a terminal
    for index, img in items:
        lr = img.lr.unsqueeze(0).to(device)
        if lr.shape[1] == 1:
            lr = lr.expand(-1, 3, -1, -1)
        if index == 0:
            model(lr)  # warm-up, so that the timings below are steady-state
        sync()
        start = time.perf_counter()
        sr = model(lr)
        sync()
        seconds = time.perf_counter() - start
        sr = sr.clamp(0, 1)[0].float().cpu()
        if tuple(sr.shape[-2:]) != tuple(img.hr.shape[-2:]):
            raise RuntimeError(
                f"{method} produced {tuple(sr.shape[-2:])} for {set_name}/{img.name}, "
                f"expected {tuple(img.hr.shape[-2:])}"
            )
        try:
            values = suite.score(sr, img.hr, scale)
        except ValueError as exc:  # too small for the protocol (shave, SSIM window): name the image
            h, w = img.hr.shape[-2:]
            raise ValueError(f"{set_name}/{img.name}: the HR image ({w}x{h} px) is too small to score at x{scale}: "
                             f"{exc}") from exc
        values["seconds"] = seconds
        scores.append(ImageScore(method, set_name, scale, img.name, values))
        if keep_outputs and img.name in keep_outputs:
            kept[img.name] = sr
    if progress:
        log.info("%s %s x%d: %d images in %.1f s", method, set_name, scale, len(images), time.perf_counter() - started)
    return scores, kept
