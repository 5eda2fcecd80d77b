"""The files of one source image in ``python -m src.prepare``: the sub-image recipe (ESRGAN / BasicSR
``extract_subimages``: crop positions and ``<stem>_s001.png`` names), the MATLAB-bicubic LR of each file, the plan
of every file the image should produce, and making them (resumable: files that already hold the right pixels are
kept; a JSON marker per image, written last, records a finished image). The run over a folder, with workers, is
:mod:`src.data.prepare`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.storage.atomic import atomic_write, write_text

MARKER_DIR = ".prepare"


# ---- geometry and names ------------------------------------------------------------------------------------
def crop_starts(length: int, crop: int, step: int, thresh: int) -> list[int]:
    """Start offsets of the crops along one axis of ``length`` pixels (empty if ``length < crop``).

    Regular starts ``0, step, 2*step, …`` while the crop fits; then one crop flush with the end when the
    uncovered leftover is wider than ``thresh``.
    """
    if length < crop:
        return []
    starts = list(range(0, length - crop + 1, step))
    if length - (starts[-1] + crop) > thresh:
        starts.append(length - crop)
    return starts


def crop_boxes(height: int, width: int, crop: int, step: int, thresh: int) -> list[tuple[int, int]]:
    """``(top, left)`` of every sub-image, row by row (the order of the ``_s001, _s002, …`` numbering)."""
    return [
        (top, left)
        for top in crop_starts(height, crop, step, thresh)
        for left in crop_starts(width, crop, step, thresh)
    ]


def sub_name(stem: str, index: int) -> str:
    """File name of sub-image ``index`` (1-based) of the image ``stem``."""
    return f"{stem}_s{index:03d}.png"


def lr_name(stem: str, scale: int) -> str:
    """The official DIV2K LR naming: ``0001.png`` -> ``0001x4.png``."""
    return f"{stem}x{scale}.png"


# ---- files -------------------------------------------------------------------------------------------------
def _atomic_png(pixels: np.ndarray, path: Path, compress: int) -> None:
    """Write (H, W, 3) uint8 as PNG atomically (:func:`src.storage.atomic.atomic_write`)."""
    from PIL import Image

    with atomic_write(path) as fh:
        Image.fromarray(np.ascontiguousarray(pixels)).save(fh, format="PNG", compress_level=compress)


def write_json(obj: dict, path: Path) -> None:
    write_text(path, json.dumps(obj, indent=1))


def _file_matches(path: Path, pixels: np.ndarray) -> bool:
    """True if ``path`` is a complete image file with exactly these RGB pixels."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.mode != "RGB" or img.size != (pixels.shape[1], pixels.shape[0]):
                return False
            img.load()
            return bool(np.array_equal(np.asarray(img), pixels))
    except Exception:  # noqa: BLE001 - a truncated or foreign file is simply "not matching"
        return False


def _lr_pixels(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB bicubic LR of ``modcrop(hr, scale)``: (H, W, 3) uint8 -> (H/s, W/s, 3) uint8."""
    import torch

    from src.degradations.resize import imresize, modcrop

    x = torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1).to(torch.float64).div_(255.0)
    lr = imresize(modcrop(x, scale), 1.0 / scale)
    return lr.clamp_(0, 1).mul_(255.0).round_().to(torch.uint8).permute(1, 2, 0).numpy()


@dataclass
class ImagePlan:
    """Everything a worker needs for one source image."""

    source: str
    stem: str
    output: str
    lr_output: str
    crop: int
    step: int
    thresh: int
    subimages: bool
    lr_scales: list[int]
    compress: int


def _planned_files(plan: ImagePlan, height: int, width: int) -> list[tuple[Path, Callable[[np.ndarray], np.ndarray]]]:
    """(path, pixels-from-image) of every file this image should produce, in writing order."""
    out, lr_root = Path(plan.output), Path(plan.lr_output)
    files: list[tuple[Path, Callable[[np.ndarray], np.ndarray]]] = []
    if plan.subimages:
        c = plan.crop
        for i, (top, left) in enumerate(crop_boxes(height, width, c, plan.step, plan.thresh), start=1):

            def cut(img: np.ndarray, top: int = top, left: int = left) -> np.ndarray:
                return img[top : top + c, left : left + c]

            name = sub_name(plan.stem, i)
            files.append((out / name, cut))
            for s in plan.lr_scales:

                def down(img: np.ndarray, cut: Callable = cut, s: int = s) -> np.ndarray:
                    return _lr_pixels(cut(img), s)

                files.append((lr_root / f"X{s}" / lr_name(Path(name).stem, s), down))
    else:
        for s in plan.lr_scales:
            if min(height, width) >= s:
                files.append((lr_root / f"X{s}" / lr_name(plan.stem, s), lambda img, s=s: _lr_pixels(img, s)))
    return files


def _marker_path(plan: ImagePlan) -> Path:
    return Path(plan.output) / MARKER_DIR / f"{plan.stem}.json"


def _source_id(path: Path) -> dict:
    st = path.stat()
    return {"source": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def is_done(plan: ImagePlan) -> bool:
    """True if a previous run completed this image with (at least) the files this run wants."""
    try:
        marker = json.loads(_marker_path(plan).read_text())
        if {k: marker[k] for k in ("source", "bytes", "mtime_ns")} != _source_id(Path(plan.source)):
            return False
        wanted = {str(p.resolve()) for p, _ in _planned_files(plan, marker["height"], marker["width"])}
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return wanted <= set(marker["files"]) and all(os.path.isfile(p) for p in wanted)


@dataclass
class ImageResult:
    stem: str
    files: int = 0  # files this image should have
    written: int = 0  # files written now
    kept: int = 0  # existing files that matched and were left untouched
    resumed: bool = False  # completed by an earlier run, not opened
    too_small: bool = False
    error: str | None = None


def process_image(plan: ImagePlan) -> ImageResult:
    """Make (or complete) every file of one source image, then write its marker."""
    from src.data.datasets import load_uint8_rgb

    result = ImageResult(plan.stem)
    try:
        source = Path(plan.source)
        src_id = _source_id(source)
        img = load_uint8_rgb(source).permute(1, 2, 0).numpy()  # (H, W, 3) uint8
        height, width = img.shape[:2]
        files = _planned_files(plan, height, width)
        result.files = len(files)
        result.too_small = plan.subimages and min(height, width) < plan.crop
        for path, make in files:
            pixels = make(img)
            if path.exists() and _file_matches(path, pixels):
                result.kept += 1
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_png(pixels, path, plan.compress)
            result.written += 1
        marker = _marker_path(plan)
        marker.parent.mkdir(parents=True, exist_ok=True)
        write_json(
            {**src_id, "height": height, "width": width, "files": [str(p.resolve()) for p, _ in files]}, marker
        )
    except Exception as exc:  # noqa: BLE001 - reported per image at the end of the run
        result.error = f"{plan.source}: {type(exc).__name__}: {exc}"
    return result
