"""Image file I/O: where the pixels of files (8 or 16 bit) become float tensors and back. (Training and
validation batches stay uint8 from the file to the device; :meth:`src.data.batch.SRBatch.to_float` converts them.)

Inside srsuite an image is a float32 tensor (C, H, W) with values in [0, 1]. Files are converted on load:
grayscale stays one channel unless ``channels=3`` is asked for, RGBA loses its alpha (with a warning),
16-bit files are scaled by 1/65535 (kept at full precision), palette images are expanded.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from src.storage.atomic import atomic_write, write_bytes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files directly inside ``folder`` (suffixes in ``IMAGE_SUFFIXES``, case-insensitive)."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _to_array(img: Image.Image, path: Path) -> np.ndarray:
    """PIL image -> float32 array (H, W) or (H, W, C) in [0, 1]."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if arr.max() > 255 or img.mode.startswith("I;16") else 255.0
        return (arr / peak).astype(np.float32)
    if img.mode == "F":
        return np.asarray(img, dtype=np.float32)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA",):
        warnings.warn(f"{path}: dropping the alpha channel of a gray+alpha image", stacklevel=3)
        img = img.convert("L")
    if img.mode in ("RGBA",):
        alpha = np.asarray(img)[..., 3]
        if alpha.min() < 255:
            warnings.warn(f"{path}: dropping a non-opaque alpha channel (RGBA -> RGB)", stacklevel=3)
        img = img.convert("RGB")
    if img.mode in ("CMYK", "YCbCr", "1"):
        img = img.convert("RGB" if img.mode != "1" else "L")
    if img.mode not in ("L", "RGB"):
        raise ValueError(f"{path}: unsupported image mode {img.mode!r}")
    return np.asarray(img, dtype=np.float32) / 255.0


def _read_png16_color(path: Path) -> np.ndarray | None:
    """A 16-bit RGB/RGBA PNG as float32 (H, W, C) in [0, 1]; ``None`` for any other file.

    PIL has no 16-bit colour mode and silently reduces such files to 8 bits, so they are decoded with
    torchvision's PNG decoder instead.
    """
    with open(path, "rb") as f:
        head = f.read(26)
    # signature (8) + IHDR length (4) + b"IHDR" (4) + width (4) + height (4) + bit depth (1) + colour type (1)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    if head[24] != 16 or head[25] not in (2, 6):  # colour type 2 = RGB, 6 = RGBA
        return None
    from torchvision.io import ImageReadMode, decode_png, read_file

    data = decode_png(read_file(str(path)), mode=ImageReadMode.UNCHANGED)  # uint16 (C, H, W)
    return (data.permute(1, 2, 0).to(torch.float64) / 65535.0).to(torch.float32).numpy()


def load_image(path: str | Path, channels: int | None = None) -> torch.Tensor:
    """Read an image file as a float32 tensor (C, H, W) in [0, 1].

    Args:
        path: image file (PNG, JPEG, BMP, TIFF, ...). 16-bit PNG/TIFF keeps its precision.
        channels: ``None`` keeps the file's own colour layout (1 for grayscale, 3 for colour);
            ``3`` expands grayscale to RGB; ``1`` is refused for colour files (use the Y channel instead).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    arr = _read_png16_color(path)
    if arr is None:
        with Image.open(path) as img:
            img.load()
            arr = _to_array(img, path)
    if arr.ndim == 3 and arr.shape[2] == 4:  # 16-bit RGBA via other decoders
        if arr[..., 3].min() < 1.0:
            warnings.warn(f"{path}: dropping a non-opaque alpha channel (RGBA -> RGB)", stacklevel=2)
        arr = arr[..., :3]
    tensor = torch.from_numpy(np.ascontiguousarray(arr))
    tensor = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()
    if channels == 3 and tensor.shape[0] == 1:
        tensor = tensor.expand(3, -1, -1).contiguous()
    elif channels == 1 and tensor.shape[0] == 3:
        raise ValueError(f"{path}: is a colour image, but a single-channel image was expected")
    elif channels not in (None, 1, 3):
        raise ValueError(f"channels must be None, 1 or 3, got {channels!r}")
    return tensor


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Float image in [0, 1] (any shape) -> uint8 with clamping and round-half-to-even (as numpy/MATLAB
    ``uint8()`` differ only at exact .5, which float outputs essentially never hit)."""
    return (img.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8)


def save_image(img: torch.Tensor, path: str | Path, bit_depth: int = 8) -> None:
    """Write a float tensor (C, H, W) in [0, 1], C in {1, 3}, to ``path`` (format from the suffix).

    ``bit_depth=16`` writes a 16-bit PNG (grayscale or RGB). Written atomically (:mod:`src.storage.atomic`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"save_image expects a (1|3, H, W) tensor, got shape {tuple(img.shape)}")
    arr = img.detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image file extension {path.suffix!r}")
    if bit_depth == 8:
        data = (arr * 255.0).round().astype(np.uint8)
        with atomic_write(path) as fh:
            Image.fromarray(data[..., 0] if data.shape[2] == 1 else data).save(fh, format=fmt)
    elif bit_depth == 16:
        data = (arr * 65535.0).round().astype(np.uint16)
        if data.shape[2] == 1:
            with atomic_write(path) as fh:
                Image.fromarray(data[..., 0]).save(fh, format=fmt)
        else:  # PIL cannot write 16-bit RGB; fall back to imageio-free PNG via numpy + zlib
            _write_png16_rgb(data, path)
    else:
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")


def _write_png16_rgb(data: np.ndarray, path: Path) -> None:
    """Minimal 16-bit RGB PNG writer (PIL has no 16-bit RGB mode)."""
    import struct
    import zlib

    h, w, _ = data.shape
    raw = b"".join(b"\x00" + data[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
    write_bytes(path, png + chunk(b"IEND", b""))
