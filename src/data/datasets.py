"""Map-style data sets. Training items are uint8 HR patches (LR is made on the device); validation items
are whole (modcropped) images. uint8 keeps worker->main transfers and pinned memory four times smaller.

The flips / 90-degree rotations of a training item (:func:`augment`) are own code, not ``kornia.augmentation``:
kornia has no transpose or exact 90-degree rotation (``RandomRotation`` resamples: 1.2e-5 off ``torch.rot90``),
takes float input only, and draws from the global torch RNG (no ``torch.Generator``, so not the per-item seeded
draws of :class:`EpochSeeded`); its two flips, the HR's parameters re-applied to the LR, cost 8.2 ms per LR/HR
pair vs 0.22 ms here for all three (``experiments/benchmarks/kornia/results.md``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from src.data.image_io import load_image


def _as_uint8(img: torch.Tensor) -> torch.Tensor:
    return (img * 255.0).round().clamp(0, 255).to(torch.uint8)


def load_uint8_rgb(path: Path) -> torch.Tensor:
    """Image file -> uint8 tensor (3, H, W). 8-bit RGB/gray files are read directly (no float round trip,
    ~40% faster decoding); other modes (16-bit, RGBA, palette …) go through :func:`load_image`."""
    with Image.open(path) as img:
        if img.mode in ("RGB", "L"):
            arr = np.array(img)  # a writable copy (np.asarray of a PIL image is read-only)
            tensor = torch.from_numpy(arr)
            return tensor.expand(3, -1, -1).contiguous() if arr.ndim == 2 else tensor.permute(2, 0, 1).contiguous()
    return _as_uint8(load_image(path, channels=3))


def augment(tensors: Sequence[torch.Tensor], generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """The same random horizontal flip, vertical flip and 90-degree rotation for every tensor (…, H, W)."""
    hflip, vflip, rot = (torch.rand(3, generator=generator) < 0.5).tolist()
    out = []
    for t in tensors:
        if hflip:
            t = t.flip(-1)
        if vflip:
            t = t.flip(-2)
        if rot:
            t = t.transpose(-1, -2)
        out.append(t.contiguous())
    return out


class EpochSeeded:
    """Per-item random draws for training sets: item ``index`` of epoch ``e`` takes its crop and flips from a
    generator seeded by ``(seed, e, index)``, so a batch does not depend on which worker loaded it or on what
    was drawn before (the loader can resume mid-epoch). The epoch lives in shared memory: the loader sets it in
    the main process and persistent worker processes see it."""

    def seed_items(self, seed: int = 0) -> None:
        """Set the base seed of the per-item draws (and a fresh shared epoch counter at 0)."""
        self.seed = int(seed)
        self.epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        self.epoch.fill_(int(epoch))

    def item_generator(self, index: int) -> torch.Generator:
        state = np.random.SeedSequence([self.seed & 0xFFFFFFFF, int(self.epoch) & 0xFFFFFFFF, int(index)])
        return torch.Generator().manual_seed(int(state.generate_state(1, dtype=np.uint64)[0]))


class _ImageStore:
    """Decodes images on demand, optionally keeping the decoded uint8 tensors in memory."""

    def __init__(self, paths: Sequence[Path], cache: bool) -> None:
        self.paths = list(paths)
        self.cache = cache
        self._images: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        if index in self._images:
            return self._images[index]
        img = load_uint8_rgb(self.paths[index])
        if self.cache:
            self._images[index] = img
        return img


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as img:
        return img.height, img.width


class RandomPatchDataset(EpochSeeded, Dataset):
    """Random HR patches with flips and 90-degree rotations.

    Args:
        paths: HR image files.
        patch_size: HR patch side in pixels; must be a multiple of ``scale``.
        scale: SR scale (only used to check ``patch_size``).
        repeat: the epoch visits every image ``repeat`` times (one random patch per visit).
        cache: keep decoded images in memory (fast; needs about H*W*3 bytes per image).
        augment: random flips / rotations.

    Item: ``{"hr": uint8 (3, patch_size, patch_size)}``. Images smaller than the patch are left out with a
    warning that names them.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        patch_size: int,
        scale: int,
        repeat: int = 1,
        cache: bool = True,
        augment: bool = True,
    ) -> None:
        if patch_size % scale:
            raise ValueError(f"data.patch_size={patch_size} must be a multiple of scale={scale}")
        usable, too_small = [], []
        for p in paths:
            h, w = _image_size(p)
            (usable if min(h, w) >= patch_size else too_small).append(p)
        if too_small:
            warnings.warn(
                f"{len(too_small)} training image(s) smaller than data.patch_size={patch_size} are left out: "
                + ", ".join(str(p) for p in too_small[:10])
                + (" …" if len(too_small) > 10 else ""),
                stacklevel=2,
            )
        if not usable:
            raise ValueError(f"no training image is at least {patch_size}x{patch_size} pixels")
        self.images = _ImageStore(usable, cache)
        self.patch_size = patch_size
        self.repeat = repeat
        self.augment = augment
        self.seed_items()

    def __len__(self) -> int:
        return len(self.images) * self.repeat

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        img = self.images[index % len(self.images)]
        h, w = img.shape[-2:]
        p = self.patch_size
        gen = self.item_generator(index)
        top = int(torch.randint(0, h - p + 1, (), generator=gen))
        left = int(torch.randint(0, w - p + 1, (), generator=gen))
        patch = img[:, top : top + p, left : left + p]
        if self.augment:
            (patch,) = augment([patch], gen)
        return {"hr": patch.contiguous()}


class PairedPatchDataset(EpochSeeded, Dataset):
    """Aligned random patches from paired LR/HR files (LR given, so no degradation is applied).

    Item: ``{"lr": uint8 (3, p/scale, p/scale), "hr": uint8 (3, p, p)}`` with ``p = patch_size``.
    Each HR file must be exactly ``scale`` times its LR file (after modcrop of the HR); otherwise an error
    names the pair.
    """

    def __init__(
        self,
        lr_paths: Sequence[Path],
        hr_paths: Sequence[Path],
        patch_size: int,
        scale: int,
        repeat: int = 1,
        cache: bool = True,
        augment: bool = True,
    ) -> None:
        if patch_size % scale:
            raise ValueError(f"data.patch_size={patch_size} must be a multiple of scale={scale}")
        for lr_path, hr_path in zip(lr_paths, hr_paths, strict=True):
            (lh, lw), (hh, hw) = _image_size(lr_path), _image_size(hr_path)
            if (lh * scale, lw * scale) != (hh - hh % scale, hw - hw % scale):
                raise ValueError(
                    f"LR/HR size mismatch for x{scale}: {lr_path} is {lh}x{lw}, {hr_path} is {hh}x{hw}"
                )
            if min(lh, lw) < patch_size // scale:
                raise ValueError(f"{lr_path} ({lh}x{lw}) is smaller than the LR patch {patch_size // scale}")
        self.lr_images = _ImageStore(lr_paths, cache)
        self.hr_images = _ImageStore(hr_paths, cache)
        self.patch_size, self.scale, self.repeat, self.augment = patch_size, scale, repeat, augment
        self.seed_items()

    def __len__(self) -> int:
        return len(self.hr_images) * self.repeat

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        i = index % len(self.hr_images)
        lr, hr = self.lr_images[i], self.hr_images[i]
        lp, s = self.patch_size // self.scale, self.scale
        gen = self.item_generator(index)
        top = int(torch.randint(0, lr.shape[-2] - lp + 1, (), generator=gen))
        left = int(torch.randint(0, lr.shape[-1] - lp + 1, (), generator=gen))
        lr_patch = lr[:, top : top + lp, left : left + lp]
        hr_patch = hr[:, top * s : (top + lp) * s, left * s : (left + lp) * s]
        if self.augment:
            lr_patch, hr_patch = augment([lr_patch, hr_patch], gen)
        return {"lr": lr_patch.contiguous(), "hr": hr_patch.contiguous()}


class FullImageDataset(Dataset):
    """Whole images for validation: HR modcropped to a multiple of ``scale`` (and optionally centre-cropped
    to ``crop`` pixels, a multiple of ``scale``, to bound validation time on 2K images).

    Item: ``{"hr": uint8 (3, H, W), "name": str, "index": int}`` plus ``"lr": uint8 (3, H/scale, W/scale)`` when
    LR files are given.
    """

    def __init__(
        self,
        hr_paths: Sequence[Path],
        scale: int,
        lr_paths: Sequence[Path] | None = None,
        crop: int | None = None,
        cache: bool = True,
    ) -> None:
        if crop is not None and crop % scale:
            raise ValueError(f"data.val_crop={crop} must be a multiple of scale={scale}")
        if lr_paths is not None and len(lr_paths) != len(hr_paths):
            raise ValueError(f"{len(lr_paths)} LR files for {len(hr_paths)} HR files")
        self.hr_images = _ImageStore(hr_paths, cache)
        self.lr_images = _ImageStore(lr_paths, cache) if lr_paths is not None else None
        self.scale, self.crop = scale, crop

    def __len__(self) -> int:
        return len(self.hr_images)

    def _window(self, h: int, w: int) -> tuple[int, int, int, int]:
        s = self.scale
        h, w = h - h % s, w - w % s
        if self.crop is None:
            return 0, 0, h, w
        ch, cw = min(self.crop, h), min(self.crop, w)
        top = ((h - ch) // 2) // s * s
        left = ((w - cw) // 2) // s * s
        return top, left, ch, cw

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        hr = self.hr_images[index]
        top, left, h, w = self._window(*hr.shape[-2:])
        item: dict[str, torch.Tensor | str] = {
            "hr": hr[:, top : top + h, left : left + w].contiguous(),
            "name": self.hr_images.paths[index].name,
            "index": index,  # identifies the image when DDP validation pads a process's share with repeats
        }
        if self.lr_images is not None:
            s = self.scale
            lr = self.lr_images[index]
            item["lr"] = lr[:, top // s : (top + h) // s, left // s : (left + w) // s].contiguous()
            if tuple(item["lr"].shape[-2:]) != (h // s, w // s):
                raise ValueError(
                    f"LR file {self.lr_images.paths[index]} is {tuple(lr.shape[-2:])}, expected the HR size / {s}"
                )
        return item
