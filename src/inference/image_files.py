"""Image files in and out of the upscaling CLIs (``python -m src.upscale``, ``python -m src.pulse``): which
files an ``input=`` names, where each output goes (refusing collisions and overwrites), and reading / writing
images with their alpha channel and bit depth (gray, gray+alpha, RGB, RGBA; 8 or 16 bits per sample).

Pixels are float32 in [0, 1], (C, H, W). Outputs are always PNG (lossless; holds 16-bit and alpha), written
atomically (:func:`src.storage.atomic.atomic_write`).
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import ListConfig

from src.storage.atomic import atomic_write


class OutputExistsError(ValueError):
    """An output file exists and ``overwrite`` is false."""


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



def output_bytes(image, scale: int) -> int:
    """Upper bound of the PNG written for ``image`` at ``scale``: the raw samples (PNG's deflate only shrinks
    them; the stored-block worst case adds < 0.1 %) plus 64 KiB for headers."""
    h, w = image.pixels.shape[-2:]
    channels = image.pixels.shape[-3] + (0 if image.alpha is None else 1)
    raw = h * scale * w * scale * channels * (2 if image.bit_depth == 16 else 1)
    return int(raw * 1.001) + 2**16
