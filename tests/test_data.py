"""Data sets and DataModules: sample photos, random patches, folder hold-out splits, paired LR/HR folders,
and validation crops."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from src.data import FolderDataModule, PairedFolderDataModule, SampleDataModule
from src.data.batch import SRBatch
from src.data.datasets import FullImageDataset, RandomPatchDataset, load_uint8_rgb
from src.data.sample_photos import SAMPLE_PHOTOS, sample_photo_paths
from src.degradations.pipelines import BicubicDegradation


def _save_u8(arr: np.ndarray, path: Path) -> Path:
    """(H, W, 3) uint8 -> PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _unique_image(h: int, w: int) -> np.ndarray:
    """(H, W, 3) uint8 whose (R, G) pair is unique per pixel (R = row, G = column), B a fixed pattern."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack([rows * 7 % 256, cols * 5 % 256, (rows + 3 * cols) % 256], axis=-1).astype(np.uint8)


def _dihedral(img: torch.Tensor) -> list[tuple[tuple[bool, bool, bool], torch.Tensor]]:
    """The 8 flips/rotations (hflip, vflip, transpose) of a (C, H, W) tensor."""
    out = []
    for hflip, vflip, rot in itertools.product((False, True), repeat=3):
        t = img
        if hflip:
            t = t.flip(-1)
        if vflip:
            t = t.flip(-2)
        if rot:
            t = t.transpose(-1, -2)
        out.append(((hflip, vflip, rot), t))
    return out


def _locate(patch: torch.Tensor, img: torch.Tensor) -> list[tuple[tuple[bool, bool, bool], int, int]]:
    """Every (transform, top, left) at which ``patch`` is a crop of a dihedral transform of ``img``."""
    p = patch.shape[-1]
    hits = []
    for key, t in _dihedral(img):
        if min(t.shape[-2:]) < p:
            continue
        windows = t.unfold(1, p, 1).unfold(2, p, 1)  # (C, nh, nw, p, p)
        eq = (windows == patch[:, None, None]).all(dim=4).all(dim=3).all(dim=0)
        hits += [(key, int(i), int(j)) for i, j in eq.nonzero().tolist()]
    return hits


# =========================================================================================================
# SampleDataModule
def _sample_dm(**overrides) -> SampleDataModule:
    kwargs = dict(
        scale=4,
        degradation=BicubicDegradation(4),
        train_photos=["chelsea", "rocket"],
        val_photos=["astronaut"],
        patch_size=48,
        batch_size=4,
        num_workers=0,
        repeat=2,
        val_name="sample",
    )
    kwargs.update(overrides)
    return SampleDataModule(**kwargs)


def test_sample_datamodule_train_batch_and_lr_synthesis():
    torch.manual_seed(0)
    dm = _sample_dm()
    dm.setup("fit")
    assert len(dm.train_set) == 4  # 2 photos x repeat 2
    batch = next(iter(dm.train_dataloader()))
    assert batch.hr.dtype == torch.uint8
    assert batch.hr.shape == (4, 3, 48, 48)
    hr_u8 = batch.hr.clone()
    out = dm.on_after_batch_transfer(batch, 0)
    hr, lr = out.hr, out.lr
    assert hr.dtype == torch.float32 and hr.shape == (4, 3, 48, 48)
    assert hr.min().item() >= 0.0 and hr.max().item() <= 1.0
    assert torch.equal(hr, hr_u8.float() / 255.0)
    assert lr.shape == (4, 3, 12, 12) and lr.dtype == torch.float32
    assert torch.equal(lr, BicubicDegradation(4)(SRBatch(hr=hr, training=True)).lr)
    # the degradation quantizes to 8-bit levels
    assert torch.equal((lr * 255).round() / 255, lr)


def test_sample_datamodule_val_item_is_modcropped_astronaut():
    dm = _sample_dm()
    dm.setup("fit")
    assert len(dm.val_set) == 1
    item = dm.val_set[0]
    assert item["name"] == "astronaut.png"
    assert item["hr"].dtype == torch.uint8 and item["hr"].shape == (3, 512, 512)
    assert torch.equal(item["hr"], load_uint8_rgb(sample_photo_paths(["astronaut"])[0]))
    assert "lr" not in item
    batch = next(iter(dm.val_dataloader()))
    assert batch.names == ["astronaut.png"]
    out = dm.on_after_batch_transfer(batch, 0)
    assert out.lr.shape == (1, 3, 128, 128)


def test_sample_photo_modcrop_for_odd_sizes():
    # chelsea is 300x451: x4 modcrop keeps 300x448 from the top-left corner
    path = sample_photo_paths(["chelsea"])[0]
    full = load_uint8_rgb(path)
    assert full.shape == (3, 300, 451)
    item = FullImageDataset([path], scale=4)[0]
    assert item["hr"].shape == (3, 300, 448)
    assert torch.equal(item["hr"], full[:, :300, :448])


def test_sample_datamodule_overlap_raises():
    with pytest.raises(ValueError, match="overlap") as info:
        _sample_dm(train_photos=["chelsea", "astronaut"], val_photos=["astronaut"])
    assert "astronaut" in str(info.value)


def test_sample_datamodule_unknown_photo_lists_names():
    dm = _sample_dm(train_photos=["chelsea", "lenna"])
    with pytest.raises(ValueError, match="lenna") as info:
        dm.setup("fit")
    for name in SAMPLE_PHOTOS:
        assert name in str(info.value)


def test_datamodule_without_degradation_raises_on_unpaired_batch():
    dm = _sample_dm(degradation=None)
    with pytest.raises(RuntimeError, match="degradation"):
        dm.on_after_batch_transfer(SRBatch(hr=torch.zeros(1, 3, 8, 8, dtype=torch.uint8), training=True), 0)


def test_datamodule_patch_not_multiple_of_scale():
    with pytest.raises(ValueError, match="multiple"):
        _sample_dm(patch_size=50)


# =========================================================================================================
# RandomPatchDataset
@pytest.fixture()
def unique_png(tmp_path) -> tuple[Path, torch.Tensor]:
    arr = _unique_image(20, 27)
    path = _save_u8(arr, tmp_path / "unique.png")
    return path, torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def test_random_patches_are_dihedral_crops(unique_png):
    path, img = unique_png
    assert len(_locate(img[:, 3:11, 5:13], img)) == 1  # the helper finds exactly the one location
    ds = RandomPatchDataset([path], patch_size=8, scale=2, repeat=40)
    assert len(ds) == 40
    torch.manual_seed(1)
    transforms, offsets = set(), set()
    for i in range(len(ds)):
        patch = ds[i]["hr"]
        assert patch.dtype == torch.uint8 and patch.shape == (3, 8, 8)
        hits = _locate(patch, img)
        assert len(hits) == 1, f"patch {i} is not a unique crop of a flipped/rotated source: {hits}"
        transforms.add(hits[0][0])
        offsets.add(hits[0][1:])
    assert len(transforms) >= 5  # augmentation varies (8 equally likely; 40 draws)
    assert len(offsets) >= 20


def test_random_patches_without_augment_are_plain_crops(unique_png):
    path, img = unique_png
    ds = RandomPatchDataset([path], patch_size=8, scale=4, repeat=10, augment=False)
    torch.manual_seed(2)
    for i in range(len(ds)):
        patch = ds[i]["hr"]
        top, left = int(patch[0, 0, 0]) // 7, int(patch[1, 0, 0]) // 5
        assert torch.equal(patch, img[:, top : top + 8, left : left + 8])


def test_random_patches_reproducible_with_seed(unique_png):
    path, _ = unique_png
    ds = RandomPatchDataset([path], patch_size=8, scale=2, repeat=12)

    def patches(seed: int, epoch: int, order=None) -> torch.Tensor:
        ds.seed_items(seed)
        ds.set_epoch(epoch)
        order = order or range(len(ds))
        return torch.stack([ds[i]["hr"] for i in order])

    first = patches(123, 0)
    torch.manual_seed(999)  # the global RNG plays no part
    assert torch.equal(first, patches(123, 0))
    assert torch.equal(first.flip(0), patches(123, 0, order=range(len(ds) - 1, -1, -1)))  # per item, any order
    assert not torch.equal(first, patches(124, 0))
    assert not torch.equal(first, patches(123, 1))


def test_random_patch_size_must_be_multiple_of_scale(unique_png):
    path, _ = unique_png
    with pytest.raises(ValueError, match="multiple of scale"):
        RandomPatchDataset([path], patch_size=10, scale=4)


def test_small_images_are_left_out_with_warning(tmp_path):
    big = _save_u8(_unique_image(20, 20), tmp_path / "big.png")
    small = _save_u8(_unique_image(6, 30), tmp_path / "tiny_one.png")
    with pytest.warns(UserWarning, match="tiny_one.png") as record:
        ds = RandomPatchDataset([small, big], patch_size=8, scale=2, repeat=3)
    assert "big.png" not in str(record[0].message)
    assert len(ds) == 3
    assert ds.images.paths == [big]
    with pytest.raises(ValueError, match="8x8"), pytest.warns(UserWarning):
        RandomPatchDataset([small], patch_size=8, scale=2)


def test_image_exactly_patch_size_is_kept(tmp_path):
    path = _save_u8(_unique_image(8, 8), tmp_path / "exact.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = RandomPatchDataset([path], patch_size=8, scale=2, augment=False)
    assert torch.equal(ds[0]["hr"], torch.from_numpy(_unique_image(8, 8)).permute(2, 0, 1))


# =========================================================================================================
# FolderDataModule
@pytest.fixture()
def ten_pngs(tmp_path) -> Path:
    folder = tmp_path / "hr"
    rng = np.random.default_rng(0)
    for i in range(10):
        _save_u8(rng.integers(0, 256, size=(16, 20, 3), dtype=np.uint8), folder / f"img{i:02d}.png")
    return folder


def _folder_dm(train_dirs, **overrides) -> FolderDataModule:
    kwargs = dict(scale=2, patch_size=8, batch_size=2, num_workers=0, degradation=BicubicDegradation(2))
    kwargs.update(overrides)
    return FolderDataModule(train_dirs=train_dirs, **kwargs)


def test_folder_holdout_split(ten_pngs):
    dm = _folder_dm([str(ten_pngs)], val_fraction=0.2, split_seed=0)
    train, (val, val_lr) = dm.train_files(), dm.val_files()
    assert val_lr is None
    assert len(train) == 8 and len(val) == 2
    assert not set(train) & set(val)
    assert sorted(train + val) == sorted(ten_pngs.glob("*.png"))
    # deterministic for a seed, also for a fresh DataModule
    again = _folder_dm([str(ten_pngs)], val_fraction=0.2, split_seed=0)
    assert again.val_files()[0] == val and again.train_files() == train
    # the split depends on the seed
    splits = {tuple(_folder_dm([str(ten_pngs)], val_fraction=0.2, split_seed=s).val_files()[0]) for s in range(8)}
    assert len(splits) >= 3


def test_folder_setup_builds_sets(ten_pngs):
    dm = _folder_dm([str(ten_pngs)], val_fraction=0.2, split_seed=3, val_crop=8)
    dm.setup("fit")
    assert len(dm.train_set) == 8 and len(dm.val_set) == 2
    assert dm.val_set[0]["hr"].shape == (3, 8, 8)
    assert {dm.val_set[i]["name"] for i in range(2)} == {p.name for p in dm.val_files()[0]}


def test_folder_val_dirs(ten_pngs, tmp_path):
    val_dir = tmp_path / "val"
    _save_u8(_unique_image(12, 12), val_dir / "v.png")
    dm = _folder_dm([str(ten_pngs)], val_dirs=[str(val_dir)])
    assert len(dm.train_files()) == 10
    assert [p.name for p in dm.val_files()[0]] == ["v.png"]


def test_folder_needs_exactly_one_validation_source(ten_pngs, tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        _folder_dm([str(ten_pngs)], val_dirs=[str(tmp_path)], val_fraction=0.2)
    with pytest.raises(ValueError, match="exactly one"):
        _folder_dm([str(ten_pngs)])
    with pytest.raises(ValueError, match="val_fraction"):
        _folder_dm([str(ten_pngs)], val_fraction=1.0)


def test_folder_missing_names_layout_and_path(tmp_path):
    missing = tmp_path / "DIV2K" / "DIV2K_train_HR"
    layout = "DIV2K/\n  DIV2K_train_HR/0001.png ... 0800.png"
    dm = _folder_dm([str(missing)], val_fraction=0.1, layout=layout)
    with pytest.raises(FileNotFoundError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert layout in message
    assert str(missing.resolve()) in message


def test_folder_without_images(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="no image files"):
        _folder_dm([str(empty)], val_fraction=0.5).train_files()


# =========================================================================================================
# PairedFolderDataModule
def _write_pair(hr_dir: Path, lr_dir: Path, stem: str, lr_arr: np.ndarray, lr_name: str | None = None) -> None:
    """HR made of constant 4x4 blocks whose values are the LR pixels (LR = exact 4x4 box mean of HR)."""
    hr_arr = lr_arr.repeat(4, axis=0).repeat(4, axis=1)
    _save_u8(hr_arr, hr_dir / f"{stem}.png")
    _save_u8(lr_arr, lr_dir / (lr_name or f"{stem}x4.png"))


@pytest.fixture()
def paired_dirs(tmp_path) -> dict[str, str]:
    rng = np.random.default_rng(5)
    dirs = {k: tmp_path / k for k in ("train_hr", "train_lr", "val_hr", "val_lr")}
    for stem in ("a", "b"):
        _write_pair(dirs["train_hr"], dirs["train_lr"], stem, rng.integers(0, 256, (16, 12, 3), dtype=np.uint8))
    _write_pair(dirs["val_hr"], dirs["val_lr"], "v", rng.integers(0, 256, (10, 9, 3), dtype=np.uint8), "v.png")
    return {
        "train_hr_dir": str(dirs["train_hr"]),
        "train_lr_dir": str(dirs["train_lr"]),
        "val_hr_dir": str(dirs["val_hr"]),
        "val_lr_dir": str(dirs["val_lr"]),
    }


def _paired_dm(dirs: dict[str, str], **overrides) -> PairedFolderDataModule:
    kwargs = dict(scale=4, degradation=None, patch_size=16, batch_size=2, num_workers=0, repeat=8)
    kwargs.update(overrides)
    return PairedFolderDataModule(**dirs, **kwargs)


def test_paired_batches_are_aligned(paired_dirs):
    dm = _paired_dm(paired_dirs)
    dm.setup("fit")
    assert len(dm.train_set) == 16
    torch.manual_seed(0)
    n = 0
    for batch in dm.train_dataloader():
        assert batch.hr.shape == (2, 3, 16, 16) and batch.hr.dtype == torch.uint8
        assert batch.lr.shape == (2, 3, 4, 4) and batch.lr.dtype == torch.uint8
        assert torch.equal(F.avg_pool2d(batch.hr.float(), 4), batch.lr.float())
        # HR is piecewise constant on 4x4 blocks: the HR patch starts on a block boundary
        assert torch.equal(batch.hr, batch.lr.repeat_interleave(4, -2).repeat_interleave(4, -1))
        n += 1
    assert n == 8


def test_paired_on_after_batch_transfer_keeps_given_lr(paired_dirs):
    dm = _paired_dm(paired_dirs)  # degradation=None: calling it would raise
    dm.setup("fit")
    torch.manual_seed(1)
    batch = next(iter(dm.train_dataloader()))
    lr_u8, hr_u8 = batch.lr.clone(), batch.hr.clone()
    out = dm.on_after_batch_transfer(batch, 0)
    assert out.lr.dtype == torch.float32 and out.hr.dtype == torch.float32
    assert torch.equal(out.lr, lr_u8.float() / 255.0)
    assert torch.equal(out.hr, hr_u8.float() / 255.0)


def test_paired_val_item(paired_dirs):
    dm = _paired_dm(paired_dirs)
    dm.setup("validate")
    assert dm.train_set is None
    item = dm.val_set[0]
    assert item["name"] == "v.png"
    assert item["hr"].shape == (3, 40, 36) and item["lr"].shape == (3, 10, 9)
    assert torch.equal(F.avg_pool2d(item["hr"].float()[None], 4)[0], item["lr"].float())


def test_paired_size_mismatch_names_files(tmp_path):
    rng = np.random.default_rng(6)
    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    _save_u8(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8), hr_dir / "a.png")
    _save_u8(rng.integers(0, 256, (15, 12, 3), dtype=np.uint8), lr_dir / "ax4.png")
    dirs = {
        "train_hr_dir": str(hr_dir),
        "train_lr_dir": str(lr_dir),
        "val_hr_dir": str(hr_dir),
        "val_lr_dir": str(lr_dir),
    }
    dm = _paired_dm(dirs)
    with pytest.raises(ValueError, match="mismatch") as info:
        dm.setup("fit")
    assert str(hr_dir / "a.png") in str(info.value)
    assert str(lr_dir / "ax4.png") in str(info.value)


def test_paired_missing_lr_file(paired_dirs):
    (Path(paired_dirs["train_lr_dir"]) / "bx4.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"b\.png"):
        _paired_dm(paired_dirs).setup("fit")


# =========================================================================================================
# FullImageDataset
def test_full_image_val_crop_is_centred_and_aligned(tmp_path):
    hr_arr = _unique_image(50, 70)
    lr_arr = np.random.default_rng(7).integers(0, 256, (16, 23, 3), dtype=np.uint8)  # 50 // 3, 70 // 3
    hr_path = _save_u8(hr_arr, tmp_path / "hr.png")
    lr_path = _save_u8(lr_arr, tmp_path / "lr.png")
    hr_full = torch.from_numpy(hr_arr).permute(2, 0, 1)
    lr_full = torch.from_numpy(lr_arr).permute(2, 0, 1)
    s, crop = 3, 24
    item = FullImageDataset([hr_path], scale=s, lr_paths=[lr_path], crop=crop)[0]
    hr, lr = item["hr"], item["lr"]
    assert hr.shape == (3, crop, crop) and lr.shape == (3, crop // s, crop // s)
    top, left = int(hr[0, 0, 0]) // 7, int(hr[1, 0, 0]) // 5
    assert top % s == 0 and left % s == 0
    assert torch.equal(hr, hr_full[:, top : top + crop, left : left + crop])
    assert torch.equal(lr, lr_full[:, top // s : (top + crop) // s, left // s : (left + crop) // s])
    # centred within a scale step in the modcropped 48x69 image
    assert abs(top + crop / 2 - 48 / 2) <= s and abs(left + crop / 2 - 69 / 2) <= s
    assert (top, left) == (12, 21)


def test_full_image_crop_larger_than_image_is_modcrop(tmp_path):
    path = _save_u8(_unique_image(50, 70), tmp_path / "hr.png")
    item = FullImageDataset([path], scale=4, crop=400)[0]
    assert item["hr"].shape == (3, 48, 68)
    assert torch.equal(item["hr"], torch.from_numpy(_unique_image(50, 70)).permute(2, 0, 1)[:, :48, :68])


def test_full_image_bad_arguments(tmp_path):
    path = _save_u8(_unique_image(12, 12), tmp_path / "hr.png")
    with pytest.raises(ValueError, match="val_crop"):
        FullImageDataset([path], scale=4, crop=10)
    with pytest.raises(ValueError, match="LR files"):
        FullImageDataset([path], scale=4, lr_paths=[path, path])
    # an LR file of the wrong size is reported when the item is read
    wrong = _save_u8(_unique_image(5, 5), tmp_path / "lr.png")
    with pytest.raises(ValueError, match="lr.png"):
        FullImageDataset([path], scale=2, lr_paths=[wrong])[0]
