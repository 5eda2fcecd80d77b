"""Side-by-side comparison images: the same crop of bicubic | SR | HR (or any list), labelled; the LR enlarged with
nearest neighbour to sit beside them."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from src.data.image_io import to_uint8
from src.storage.atomic import atomic_write


def detailed_crop(hr: torch.Tensor, size: int) -> tuple[int, int, int]:
    """(top, left, side) of the ``size``-px square of ``hr`` (C, H, W) with the most gradient energy:
    the region where SR methods differ most visibly. ``side`` is ``size`` capped by the image size."""
    gray = hr.float().mean(0, keepdim=True)
    side = min(size, gray.shape[-2], gray.shape[-1])
    energy = (gray[:, 1:, :-1] - gray[:, :-1, :-1]).abs() + (gray[:, :-1, 1:] - gray[:, :-1, :-1]).abs()
    pooled = F.avg_pool2d(energy.unsqueeze(0), side - 1, stride=max(1, side // 4))[0, 0]
    idx = int(pooled.argmax())
    stride = max(1, side // 4)
    top, left = (idx // pooled.shape[-1]) * stride, (idx % pooled.shape[-1]) * stride
    return top, left, side


def comparison_panel(
    images: list[torch.Tensor], labels: list[str], crop: tuple[int, int, int] | None = None, zoom: int = 2
) -> Image.Image:
    """Tile crops of equally sized images (C, H, W) in [0, 1] left to right with a label above each.

    ``crop=(top, left, side)`` in pixels of the images; ``None`` shows whole images. Crops are enlarged
    ``zoom`` times with nearest-neighbour so that pixels stay visible.
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    tiles = []
    for img in images:
        if crop is not None:
            top, left, side = crop
            img = img[:, top : top + side, left : left + side]
        arr = to_uint8(img.cpu()).permute(1, 2, 0).numpy()
        tile = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).convert("RGB")
        tiles.append(tile.resize((tile.width * zoom, tile.height * zoom), Image.NEAREST))
    label_h, gap = 18, 4
    width = sum(t.width for t in tiles) + gap * (len(tiles) - 1)
    height = max(t.height for t in tiles) + label_h
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for tile, label in zip(tiles, labels):
        canvas.paste(tile, (x, label_h))
        draw.text((x + 4, 3), label, fill="black")
        x += tile.width + gap
    return canvas


def stack_vertically(panels: list[Image.Image]) -> Image.Image:
    """One image holding several panels, top to bottom."""
    width = max(p.width for p in panels)
    canvas = Image.new("RGB", (width, sum(p.height for p in panels)), "white")
    y = 0
    for panel in panels:
        canvas.paste(panel, (0, y))
        y += panel.height
    return canvas


def save_panel(panel: Image.Image, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        panel.save(fh, format="PNG")
    return path


def nearest_upscale(lr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """An LR image (C, h, w) enlarged with nearest-neighbour to ``size`` (H, W): how the network's input looks
    next to its output (padded with the edge / cropped when ``size`` is not an exact multiple)."""
    factor = max(1, math.ceil(max(size[0] / lr.shape[-2], size[1] / lr.shape[-1])))
    up = F.interpolate(lr.unsqueeze(0).float(), scale_factor=factor, mode="nearest")[0]
    pad_h, pad_w = max(0, size[0] - up.shape[-2]), max(0, size[1] - up.shape[-1])
    if pad_h or pad_w:
        up = F.pad(up.unsqueeze(0), (0, pad_w, 0, pad_h), mode="replicate")[0]
    return up[:, : size[0], : size[1]]
