"""LightningDataModules. CPU workers decode images, cut uint8 HR patches and collate them into an
:class:`src.data.batch.SRBatch`; the LR batch is made on the training device in ``on_after_batch_transfer`` by
the degradation pipeline (fp32, outside autocast)."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from src.config.validation import ConfigError
from src.data.batch import SRBatch, collate
from src.data.checks import check_images, describe_bad
from src.data.datasets import FullImageDataset, PairedPatchDataset, RandomPatchDataset
from src.data.image_io import list_images
from src.data.sample_photos import sample_photo_paths
from src.degradations.base import Degradation

log = logging.getLogger(__name__)

ON_BAD_FILE = ("skip", "error")


class LoaderPosition:
    """Where the training stream is: ``epoch`` (passes started) and ``consumed`` (batches of that pass that
    reached the training step; counted by the DataModule, so batches the loop prefetched but did not train on
    are not counted). A pending position from a checkpoint is replayed by the next pass."""

    def __init__(self) -> None:
        self.epoch, self.consumed = -1, 0
        self._pending: tuple[int, int] | None = None

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "consumed": self.consumed}

    def load_state_dict(self, state: dict) -> None:
        self._pending = (int(state["epoch"]), int(state["consumed"]))

    def start_pass(self) -> tuple[int, int]:
        """-> (epoch of the pass starting now, batches to skip)."""
        if self._pending is not None:
            (self.epoch, self.consumed), self._pending = self._pending, None
        else:
            self.epoch, self.consumed = self.epoch + 1, 0
        return max(self.epoch, 0), self.consumed


class ResumableLoader(DataLoader):
    """The training ``DataLoader``, resumable mid-epoch (Lightning saves ``state_dict()`` in checkpoints).

    Pass ``e`` shuffles with a generator seeded by ``(seed, e)`` (the same order on every run; a
    ``DistributedSampler`` given as ``sampler`` is set to epoch ``e``) and tells the data set the epoch,
    whose items then draw their crops from ``(seed, e, index)``. A resumed pass replays its order and skips the
    batches already trained on (they are loaded and dropped: loading time, no training).
    """

    def __init__(self, dataset, *, seed: int = 0, position: LoaderPosition | None = None, **kwargs) -> None:
        self.seed = int(seed)
        self.position = position if position is not None else LoaderPosition()
        # the order has its own generator: DataLoader's `generator` also seeds worker processes, but only when
        # they start (once, with persistent workers), which would shift the order's stream on a resumed run
        self.order_generator = torch.Generator()
        if kwargs.pop("shuffle", False) and kwargs.get("sampler") is None and kwargs.get("batch_sampler") is None:
            kwargs["sampler"] = RandomSampler(dataset, generator=self.order_generator)
        super().__init__(dataset, **kwargs)

    def __iter__(self):
        epoch, skip = self.position.start_pass()
        self.order_generator.manual_seed(_mix(self.seed, epoch))
        if hasattr(self.sampler, "set_epoch"):  # a DistributedSampler orders by (its seed, epoch)
            self.sampler.set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        iterator = super().__iter__()
        for _ in range(skip):
            next(iterator)
        return iterator

    def state_dict(self) -> dict:
        return self.position.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.position.load_state_dict(state)


def _mix(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1, dtype=np.uint64)[0])


def _require_images(folder: str | Path, key: str, layout: str) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{key}: folder not found: {folder.resolve()}\nExpected layout:\n{layout}\n"
            "Set data.root=<dir> or the SR_DATA environment variable to the folder that holds it."
        )
    images = list_images(folder)
    if not images:
        raise FileNotFoundError(f"{key}: no image files (png/jpg/bmp/tif/webp) in {folder.resolve()}")
    return images


class SRDataModule(L.LightningDataModule):
    """Shared loaders and the on-device LR synthesis. Subclasses fill ``self.train_set`` / ``self.val_set``.

    Args:
        scale: SR scale factor.
        degradation: makes the LR of batches without one (``SRBatch -> SRBatch``); injected by ``src.train``.
        patch_size: HR training patch side in pixels (multiple of ``scale``).
        batch_size: training batch size (per device).
        num_workers: CPU loader processes (0 = load in the main process).
        repeat: passes over the training images per epoch (one random patch per image per pass).
        cache: keep decoded images in memory.
        val_name: data-set name in logged metric keys, ``val/<val_name>/psnr_y``.
        val_crop: centre crop (HR px) of validation images, ``None`` for whole images.
        val_limit: use only the first N validation images (``None``: all).
        train_scales: multi-scale training (VDSR): each training batch gets a scale drawn uniformly from this
            list (seeded), its HR patches are cropped to a multiple of it and the LR made at it; the batch
            carries its ``scale``. Validation stays at ``scale``. ``None``: every batch at ``scale``.
        root: base folder that the config's paths are built from (``SR_DATA`` or ``./datasets``); kept so
            that the config documents it.
        layout: the expected folder layout, printed when a folder is missing.
        on_bad_file: what to do with training images that do not decode (truncated, corrupt, not an image), found
            by the up-front check of every file (``src.data.checks``, cached): ``skip`` (default) leaves them out
            and names them in a warning — one broken download should not stop a long queued job, and the loss of
            one image among hundreds does not change the result; ``error`` refuses to start. A bad validation
            image is always an error (skipping it would make the scores incomparable between runs).
    """

    def __init__(
        self,
        scale: int,
        degradation: Degradation | None = None,
        patch_size: int = 96,
        batch_size: int = 16,
        num_workers: int = 2,
        repeat: int = 1,
        cache: bool = True,
        val_name: str = "val",
        val_crop: int | None = None,
        val_limit: int | None = None,
        train_scales: Sequence[int] | None = None,
        root: str | None = None,
        layout: str = "",
        on_bad_file: str = "skip",
    ) -> None:
        super().__init__()
        if on_bad_file not in ON_BAD_FILE:
            raise ValueError(f"data.on_bad_file={on_bad_file!r}: expected one of {', '.join(ON_BAD_FILE)}")
        self.on_bad_file = on_bad_file
        if degradation is not None and not isinstance(degradation, Degradation):
            raise ValueError(f"degradation: {type(degradation).__qualname__} is not a degradation pipeline; expected "
                             "a src.degradations.base.Degradation (SRBatch -> SRBatch), e.g. degradation=bicubic")
        self._checked: dict[Path, str | None] = {}
        self._warned: set[Path] = set()
        self.train_scales = [int(s) for s in train_scales] if train_scales else None
        if self.train_scales and (min(self.train_scales) < 1 or max(self.train_scales) > patch_size):
            raise ValueError(f"data.train_scales={list(train_scales)} must be positive and below patch_size")
        if patch_size % scale and not self.train_scales:
            raise ValueError(f"data.patch_size={patch_size} must be a multiple of scale={scale}")
        self.scale = scale
        self.seed = int(torch.initial_seed())  # follows seed_everything: crops, shuffling, multi-scale draws
        self._scale_rng = random.Random(self.seed)
        self.position = LoaderPosition()
        self.degradation = degradation
        self.patch_size = patch_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.repeat = repeat
        self.cache = cache
        self.val_name = val_name
        self.val_crop = val_crop
        self.val_limit = val_limit
        self.root = root
        self.layout = layout
        self.train_set: torch.utils.data.Dataset | None = None
        self.val_set: FullImageDataset | None = None

    # ---- subclasses provide the file lists -------------------------------------------------------------
    def train_files(self) -> list[Path]:
        raise NotImplementedError

    def val_files(self) -> tuple[list[Path], list[Path] | None]:
        """(HR files, LR files or None)."""
        raise NotImplementedError

    def check_files(self) -> None:
        """List and decode the training and validation files now, so that a missing folder or a broken file
        fails (or, for training files with ``on_bad_file=skip``, is named and left out) before training."""
        self.usable(self.train_files(), "training")
        self._checked_val_files()

    def usable(self, paths: Sequence[Path], role: str) -> list[Path]:
        """``paths`` without the files that do not decode (checked once per file, see ``on_bad_file``); raises
        ``ValueError`` naming them for validation files or ``on_bad_file=error``."""
        paths = list(paths)
        unknown = [p for p in paths if p not in self._checked]
        if unknown:
            self._checked.update(dict.fromkeys(unknown))
            self._checked.update(check_images(unknown, what=role))
        bad = {p: self._checked[p] for p in paths if self._checked[p] is not None}
        if not bad:
            return paths
        if role != "training" or self.on_bad_file == "error":
            hint = ("fix or remove them, or set data.on_bad_file=skip to train without them" if role == "training"
                    else "fix or remove them (validation images are never skipped: scores would not be comparable)")
            raise ValueError(f"{len(bad)} of {len(paths)} {role} image(s) cannot be decoded: {describe_bad(bad)}; "
                             f"{hint}")
        new = {p: r for p, r in bad.items() if p not in self._warned}
        if new:
            log.warning("data.on_bad_file=skip: leaving out %d of %d training image(s) that cannot be decoded: %s",
                        len(new), len(paths), describe_bad(new))
            self._warned.update(new)
        return [p for p in paths if p not in bad]

    def _checked_val_files(self) -> tuple[list[Path], list[Path] | None]:
        hr, lr = self.val_files()
        if self.val_limit is not None:  # only the files that are used
            hr, lr = hr[: self.val_limit], (lr[: self.val_limit] if lr is not None else None)
        self.usable(list(hr) + list(lr or []), "validation")
        return hr, lr

    def build_train_set(self) -> torch.utils.data.Dataset:
        crop_multiple = 1 if self.train_scales else self.scale  # multi-scale batches are modcropped later
        files = self.usable(self.train_files(), "training")
        return RandomPatchDataset(files, self.patch_size, crop_multiple, self.repeat, self.cache)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self.build_train_set()
            if hasattr(self.train_set, "seed_items"):
                self.train_set.seed_items(self.seed)
            self.check_batch_size()
        if self.val_set is None:
            hr, lr = self._checked_val_files()
            if self.val_limit is not None:
                hr, lr = hr[: self.val_limit], (lr[: self.val_limit] if lr is not None else None)
            self.val_set = FullImageDataset(hr, self.scale, lr, crop=self.val_crop, cache=self.cache)

    def check_batch_size(self) -> None:
        """A training epoch must hold at least one full batch per process (batches are dropped when incomplete):
        otherwise Lightning would "train" zero steps and the run would report an untrained network."""
        world = self.trainer.world_size if self.trainer is not None else 1
        patches = len(self.train_set)
        per_process = math.ceil(patches / world)
        if per_process < self.batch_size:
            images = patches // max(self.repeat, 1)
            split = f", {per_process} per process on {world} processes" if world > 1 else ""
            raise ConfigError(
                f"data.batch_size={self.batch_size} is larger than the training set: {images} training images x "
                f"data.repeat={self.repeat} = {patches} patches per epoch{split}, so no full batch can be formed. "
                f"Lower data.batch_size or raise data.repeat"
            )

    # ---- loaders ------------------------------------------------------------------------------------------
    def _world(self) -> tuple[int, int]:
        """(number of processes, this process's global rank) of the attached trainer; (1, 0) without one."""
        trainer = getattr(self, "trainer", None)
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def train_dataloader(self) -> DataLoader:
        """Shuffled by a ``DistributedSampler`` for any number of processes (one of them too): pass ``e`` is the
        permutation of ``(seed, e)``, dealt out round-robin to the processes. With the items' crops drawn from
        ``(seed, e, index)``, ``P`` processes with batch ``B`` train at every step on the same patches as one
        process with batch ``P·B``."""
        world, rank = self._world()
        sampler = DistributedSampler(self.train_set, num_replicas=world, rank=rank, shuffle=True, seed=self.seed)
        return ResumableLoader(
            self.train_set,
            seed=self.seed,
            position=self.position,
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=True,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            collate_fn=partial(collate, training=True),
        )

    def val_dataloader(self) -> DataLoader:
        """Batches of one image. Under DDP Lightning deals the images out with a ``DistributedSampler``, which pads
        the last round with repeats; the methods drop the repeats by ``index`` before averaging."""
        return DataLoader(self.val_set, batch_size=1, shuffle=False, num_workers=min(self.num_workers, 1),
                          collate_fn=partial(collate, training=False))

    # ---- on-device LR synthesis ---------------------------------------------------------------------------
    def on_after_batch_transfer(self, batch: SRBatch, dataloader_idx: int) -> SRBatch:
        """The batch on its device: uint8 pixels -> float32 in [0, 1]; the LR made by the degradation when the
        data set gave none (with a drawn ``scale`` for multi-scale training batches). A training batch advances
        the loader position."""
        if batch.training:
            self.position.consumed += 1
        batch = batch.to_float()
        if batch.lr is not None:
            return batch
        if self.degradation is None:
            raise RuntimeError("the DataModule has no degradation to make LR images (set degradation=…)")
        if self.train_scales and batch.training:  # a multi-scale training batch
            s = self._scale_rng.choice(self.train_scales)
            hr = batch.hr
            batch = batch.replace(hr=hr[..., : hr.shape[-2] - hr.shape[-2] % s, : hr.shape[-1] - hr.shape[-1] % s],
                                  scale=s)
        return self.degradation(batch)


# ---- resuming -----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Saved in checkpoints by Lightning: the multi-scale generator and the degradation's training stream
        (generators, training-pair pool) of every process (gathered under DDP: each rank has its own). The loader
        position is saved by Lightning through :class:`ResumableLoader`."""
        degradation = self.degradation.state_dict() if self.degradation is not None else None
        local = {"scale_rng": self._scale_rng.getstate(), "degradation": degradation}
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            ranks: list = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(ranks, local)
        else:
            ranks = [local]
        return {"ranks": ranks}

    def load_state_dict(self, state: dict) -> None:
        ranks = state.get("ranks") or []
        rank = torch.distributed.get_rank() if torch.distributed.is_available() and torch.distributed.is_initialized() \
            else 0
        if rank >= len(ranks):
            log.warning("data: the checkpoint holds the random state of %d process(es), this is rank %d: it "
                        "starts a fresh stream", len(ranks), rank)
            return
        local = ranks[rank]
        self._scale_rng.setstate(_as_tuple(local["scale_rng"]))
        if local.get("degradation") is not None and self.degradation is not None:
            self.degradation.load_state_dict(local["degradation"])


def _as_tuple(state):
    """random.Random states come back from checkpoints with lists where tuples were."""
    return tuple(_as_tuple(s) for s in state) if isinstance(state, (list, tuple)) else state


class SampleDataModule(SRDataModule):
    """The embedded default: photos from the scikit-image wheel (see ``src.data.sample_photos``)."""

    def __init__(self, train_photos: Sequence[str], val_photos: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        overlap = set(train_photos) & set(val_photos)
        if overlap:
            raise ValueError(f"data.train_photos and data.val_photos overlap: {sorted(overlap)}")
        self.train_photos, self.val_photos = list(train_photos), list(val_photos)

    def train_files(self) -> list[Path]:
        return sample_photo_paths(self.train_photos)

    def val_files(self) -> tuple[list[Path], None]:
        return sample_photo_paths(self.val_photos), None


class FolderDataModule(SRDataModule):
    """HR images from one or more folders (DIV2K, Flickr2K, DF2K, any folder).

    Validation comes from ``val_dirs`` when given, else from a seeded hold-out of ``val_fraction`` of the
    training images (never both, never neither).
    """

    def __init__(
        self,
        train_dirs: Sequence[str],
        val_dirs: Sequence[str] | None = None,
        val_fraction: float | None = None,
        split_seed: int = 0,
        path: str | None = None,
        **kwargs,
    ) -> None:
        """``path``: the single image folder of ``data=folder`` (referenced by its ``train_dirs``)."""
        super().__init__(**kwargs)
        self.path = path
        if (val_dirs is None) == (val_fraction is None):
            raise ValueError("data: give exactly one of val_dirs (a validation folder) or val_fraction (hold-out)")
        if val_fraction is not None and not 0 < val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
        self.train_dirs = list(train_dirs)
        self.val_dirs = list(val_dirs) if val_dirs is not None else None
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self._split: tuple[list[Path], list[Path]] | None = None

    def _all_train(self) -> list[Path]:
        return [p for d in self.train_dirs for p in _require_images(d, "data.train_dirs", self.layout)]

    def _holdout(self) -> tuple[list[Path], list[Path]]:
        if self._split is None:
            files = self.usable(self._all_train(), "training")  # the hold-out is drawn from decodable files
            order = list(range(len(files)))
            random.Random(self.split_seed).shuffle(order)
            n_val = max(1, round(self.val_fraction * len(files)))
            if n_val >= len(files):
                raise ValueError(f"data.val_fraction={self.val_fraction} leaves no training image of {len(files)}")
            val_idx = set(order[:n_val])
            self._split = (
                [f for i, f in enumerate(files) if i not in val_idx],
                [f for i, f in enumerate(files) if i in val_idx],
            )
        return self._split

    def train_files(self) -> list[Path]:
        return self._holdout()[0] if self.val_fraction is not None else self._all_train()

    def val_files(self) -> tuple[list[Path], None]:
        if self.val_fraction is not None:
            return self._holdout()[1], None
        return [p for d in self.val_dirs for p in _require_images(d, "data.val_dirs", self.layout)], None


def _pair_by_name(lr_dir: str | Path, hr_dir: str | Path, key: str, layout: str) -> tuple[list[Path], list[Path]]:
    """Match LR files to HR files by stem (BasicSR's ``0001x4.png`` naming is accepted for ``0001.png``)."""
    hr_files = _require_images(hr_dir, f"{key} (HR)", layout)
    lr_files = _require_images(lr_dir, f"{key} (LR)", layout)
    lr_by_stem = {p.stem: p for p in lr_files}
    lr_matched = []
    for hr in hr_files:
        candidates = [hr.stem] + [f"{hr.stem}x{s}" for s in (2, 3, 4, 8)]
        match = next((lr_by_stem[c] for c in candidates if c in lr_by_stem), None)
        if match is None:
            raise FileNotFoundError(f"{key}: no LR file in {lr_dir} for HR file {hr.name}")
        lr_matched.append(match)
    return lr_matched, hr_files


class PairedFolderDataModule(SRDataModule):
    """Paired LR/HR folders (files matched by name): no degradation is run; the LR files are the input."""

    def __init__(
        self, train_lr_dir: str, train_hr_dir: str, val_lr_dir: str, val_hr_dir: str, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.train_lr_dir, self.train_hr_dir = train_lr_dir, train_hr_dir
        self.val_lr_dir, self.val_hr_dir = val_lr_dir, val_hr_dir

    def check_files(self) -> None:
        self._train_pairs()
        self._checked_val_files()

    def _train_pairs(self) -> tuple[list[Path], list[Path]]:
        """Training (LR, HR) files; a pair with a file that does not decode is left out (``on_bad_file``)."""
        lr, hr = _pair_by_name(self.train_lr_dir, self.train_hr_dir, "data.train_lr_dir/train_hr_dir", self.layout)
        good = set(self.usable(lr + hr, "training"))
        pairs = [(a, b) for a, b in zip(lr, hr) if a in good and b in good]
        if not pairs:
            raise ValueError("no training pair has two decodable files")
        return [a for a, _ in pairs], [b for _, b in pairs]

    def build_train_set(self) -> PairedPatchDataset:
        lr, hr = self._train_pairs()
        return PairedPatchDataset(lr, hr, self.patch_size, self.scale, self.repeat, self.cache)

    def val_files(self) -> tuple[list[Path], list[Path]]:
        lr, hr = _pair_by_name(self.val_lr_dir, self.val_hr_dir, "data.val_lr_dir/val_hr_dir", self.layout)
        return hr, lr
