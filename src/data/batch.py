"""The batch that flows from the loaders through the degradation into the methods: :class:`SRBatch`.

Life of a batch:

1. The data sets give items, dicts with ``hr`` (uint8 (3, H, W)), optional ``lr`` (uint8 (3, H/s, W/s), paired
   data), and for whole-image validation items ``name`` (file name) and ``index`` (position in the data set).
2. :func:`collate` stacks them into an ``SRBatch`` in the loader's worker, with the loader's ``training`` flag
   (the training loader collates with ``training=True``, the validation loader with ``False``).
3. Lightning moves it to the device (``SRBatch.to``, called by Lightning's ``move_data_to_device``; pinned on the
   way by the ``DataLoader`` through ``SRBatch.pin_memory``).
4. :meth:`SRBatch.to_float` turns uint8 pixels into float32 in [0, 1] (the only uint8 -> float conversion of
   the batch path), then the degradation (:class:`src.degradations.base.Degradation`) fills ``lr`` (and
   ``hr_usm``) when the data set gave no LR.
5. The methods, callbacks and held-out code read the fields.

This module imports only torch: data sets, degradations, methods and callbacks all build on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import default_collate

__all__ = ["ITEM_KEYS", "SRBatch", "collate"]

ITEM_KEYS = ("hr", "lr", "name", "index")
_NON_BLOCKING_EXCLUDED = ("cpu", "mps")  # as Lightning: no non-blocking copies to the CPU or MPS


@dataclass(kw_only=True)
class SRBatch:
    """A batch of ``B`` HR images, their LR images once made, and what the methods need to know about them.

    Fields (``B`` images, ``C`` channels (3), HR ``H`` x ``W``, ``s`` the batch's scale):

    * ``hr``: (B, C, H, W) HR images. uint8 in [0, 255] as loaded; float32 in [0, 1] after :meth:`to_float`
      (values of ``k / 255``).
    * ``training``: ``True`` for a training batch (the degradation draws from its advancing training stream, the
      loader position counts it, the pair pool may swap it), ``False`` for validation and held-out images (the
      degradation is deterministic per image).
    * ``lr``: (B, C, H/s, W/s) LR input, same dtype convention as ``hr``; ``None`` until the degradation makes
      it (given by the data set for paired data).
    * ``hr_usm``: (B, C, H, W) float32 USM-sharpened HR in [0, 1] (Real-ESRGAN's loss / discriminator target),
      made by the Real-ESRGAN degradation; ``None`` otherwise (methods then use ``hr``).
    * ``names``: the B image file names (validation items); ``None`` for training patches.
    * ``indices``: (B,) int64 positions in the data set (validation items; DDP pads a process's share with
      repeats, dropped by index); ``None`` for training patches.
    * ``scale``: the SR factor of this batch when it differs per batch (multi-scale training draws one per
      batch, see ``data.train_scales``); ``None``: the configured ``scale``.
    """

    hr: torch.Tensor
    training: bool
    lr: torch.Tensor | None = None
    hr_usm: torch.Tensor | None = None
    names: list[str] | None = None
    indices: torch.Tensor | None = None
    scale: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.training, bool):
            raise TypeError(f"SRBatch.training must be a bool, got {self.training!r}")
        if self.hr.ndim != 4:
            raise ValueError(f"SRBatch.hr must be (B, C, H, W), got shape {tuple(self.hr.shape)}")
        b = self.hr.shape[0]
        for name in ("lr", "hr_usm"):
            t = getattr(self, name)
            if t is not None and (t.ndim != 4 or t.shape[0] != b):
                raise ValueError(f"SRBatch.{name} must be ({b}, C, h, w) like hr {tuple(self.hr.shape)}, "
                                 f"got {tuple(t.shape)}")
        if self.hr_usm is not None and self.hr_usm.shape != self.hr.shape:
            raise ValueError(f"SRBatch.hr_usm {tuple(self.hr_usm.shape)} must have hr's shape {tuple(self.hr.shape)}")
        if self.names is not None and len(self.names) != b:
            raise ValueError(f"SRBatch.names has {len(self.names)} names for {b} images")
        if self.indices is not None and tuple(self.indices.shape) != (b,):
            raise ValueError(f"SRBatch.indices must be ({b},), got {tuple(self.indices.shape)}")
        if self.scale is not None and (int(self.scale) != self.scale or self.scale < 1):
            raise ValueError(f"SRBatch.scale must be a positive integer or None, got {self.scale!r}")

    def __len__(self) -> int:
        return self.hr.shape[0]

    @property
    def device(self) -> torch.device:
        return self.hr.device

    def replace(self, **changes) -> SRBatch:
        """A copy with ``changes`` (field name -> value), checked like a new batch."""
        return dataclasses.replace(self, **changes)

    def _map_tensors(self, fn) -> SRBatch:
        changes = {f.name: fn(v) for f in dataclasses.fields(self)
                   if isinstance(v := getattr(self, f.name), torch.Tensor)}
        return self.replace(**changes)

    def to(self, device: torch.device | str, non_blocking: bool | None = None) -> SRBatch:
        """Every tensor on ``device``. ``non_blocking=None`` copies without blocking except to the CPU or MPS
        (Lightning's rule for its own transfers); Lightning calls this for ``transfer_batch_to_device``."""
        device = torch.device(device)
        if non_blocking is None:
            non_blocking = device.type not in _NON_BLOCKING_EXCLUDED
        return self._map_tensors(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> SRBatch:
        """Every tensor in page-locked memory (called by a ``DataLoader`` with ``pin_memory=True``)."""
        return self._map_tensors(lambda t: t.pin_memory())

    def to_float(self) -> SRBatch:
        """uint8 images (``hr``, ``lr``, ``hr_usm``) -> float32 in [0, 1] (``k / 255``); other dtypes are kept.
        The one place where the batch's 8-bit pixels become floats."""
        changes = {}
        for name in ("hr", "lr", "hr_usm"):
            t = getattr(self, name)
            if t is not None and t.dtype == torch.uint8:
                changes[name] = t.float().div_(255.0)
        return self.replace(**changes) if changes else self


def collate(items: Sequence[Mapping], training: bool) -> SRBatch:
    """Stack data-set items into an :class:`SRBatch` (the ``collate_fn`` of the loaders).

    Args:
        items: dicts with ``hr`` (uint8 or float (C, H, W)), optional ``lr`` ((C, H/s, W/s)), ``name`` (str) and
            ``index`` (int); every item must have the same keys and image sizes.
        training: the batch's ``training`` flag (the training loader passes ``True``).

    Raises:
        ValueError: an unknown key, items with different keys, or images of different sizes (naming the items
            and their shapes: whole images of different sizes need ``batch_size=1``).
    """
    if not items:
        raise ValueError("cannot collate an empty list of items")
    keys = set(items[0])
    unknown = keys - set(ITEM_KEYS)
    if unknown:
        raise ValueError(f"data-set item has unknown key(s) {sorted(unknown)}; expected keys: {', '.join(ITEM_KEYS)}")
    if "hr" not in keys:
        raise ValueError(f"data-set item has no 'hr' image (keys: {sorted(keys)})")
    for i, item in enumerate(items[1:], start=1):
        if set(item) != keys:
            raise ValueError(f"data-set items 0 and {i} have different keys: {sorted(keys)} vs {sorted(item)}")

    def stack(key: str) -> torch.Tensor:
        tensors = [item[key] for item in items]
        first = tuple(tensors[0].shape)
        for i, t in enumerate(tensors[1:], start=1):
            if tuple(t.shape) != first or t.dtype != tensors[0].dtype:
                raise ValueError(
                    f"cannot batch '{key}' images of different sizes or types: item 0 is {_describe(tensors[0])}, "
                    f"item {i} is {_describe(t)} (whole images of different sizes need batch_size=1)"
                )
        return default_collate(tensors)  # in a worker process: stacked straight into shared memory

    return SRBatch(
        hr=stack("hr"),
        lr=stack("lr") if "lr" in keys else None,
        names=[str(item["name"]) for item in items] if "name" in keys else None,
        indices=torch.tensor([int(item["index"]) for item in items], dtype=torch.int64) if "index" in keys else None,
        training=training,
    )


def _describe(t: torch.Tensor) -> str:
    return f"{'x'.join(str(n) for n in t.shape)} {str(t.dtype).removeprefix('torch.')}"
