"""SRBatch: collate, the training flag, the one uint8 -> float conversion, device moves through Lightning, the one
degradation interface."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from lightning.fabric.utilities.apply_func import move_data_to_device
from torch.utils.data import DataLoader

from src.data import SampleDataModule
from src.data.batch import SRBatch, collate
from src.degradations.base import Degradation
from src.degradations.pipelines import BicubicDegradation, ClassicalDegradation, RealESRGANDegradation


def _u8(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _val_items(n: int = 2, size: int = 16) -> list[dict]:
    return [{"hr": _u8(3, size, size, seed=i), "name": f"img{i}.png", "index": 10 + i} for i in range(n)]


# ---- collate -------------------------------------------------------------------------------------------------------
def test_collate_training_patches():
    items = [{"hr": _u8(3, 8, 8, seed=i)} for i in range(3)]
    batch = collate(items, training=True)
    assert batch.training is True and len(batch) == 3
    assert batch.hr.shape == (3, 3, 8, 8) and batch.hr.dtype == torch.uint8
    assert torch.equal(batch.hr[2], items[2]["hr"])
    assert batch.lr is None and batch.hr_usm is None and batch.names is None and batch.indices is None
    assert batch.scale is None


def test_collate_validation_items_keeps_names_and_indices():
    items = _val_items()
    items[0]["lr"], items[1]["lr"] = _u8(3, 4, 4, seed=5), _u8(3, 4, 4, seed=6)
    batch = collate(items, training=False)
    assert batch.training is False
    assert batch.names == ["img0.png", "img1.png"]
    assert batch.indices.dtype == torch.int64 and batch.indices.tolist() == [10, 11]
    assert batch.lr.shape == (2, 3, 4, 4) and torch.equal(batch.lr[1], items[1]["lr"])


def test_collate_of_mixed_sizes_names_the_items():
    items = _val_items(3)
    items[2]["hr"] = _u8(3, 16, 12)
    with pytest.raises(ValueError, match=r"'hr' images of different sizes.*item 0 is 3x16x16 uint8, item 2 is "
                                         r"3x16x12 uint8 \(whole images of different sizes need batch_size=1\)"):
        collate(items, training=False)


def test_collate_rejects_unknown_and_uneven_keys():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['mask'\]; expected keys: hr, lr, name, index"):
        collate([{"hr": _u8(3, 4, 4), "mask": _u8(1, 4, 4)}], training=True)
    with pytest.raises(ValueError, match="items 0 and 1 have different keys"):
        collate([{"hr": _u8(3, 4, 4)}, {"hr": _u8(3, 4, 4), "lr": _u8(3, 2, 2)}], training=True)
    with pytest.raises(ValueError, match="no 'hr' image"):
        collate([{"lr": _u8(3, 4, 4)}], training=True)


def test_collate_in_a_worker_process():
    """The loaders collate in their workers: the function and the batch cross process boundaries."""
    from functools import partial

    loader = DataLoader(_val_items(4), batch_size=2, num_workers=1, collate_fn=partial(collate, training=False))
    batches = list(loader)
    assert [b.names for b in batches] == [["img0.png", "img1.png"], ["img2.png", "img3.png"]]
    assert all(isinstance(b, SRBatch) and b.training is False for b in batches)
    assert torch.equal(batches[1].hr[0], _val_items(4)[2]["hr"])


# ---- the fields are checked -----------------------------------------------------------------------------------------
def test_fields_are_checked():
    hr = torch.zeros(2, 3, 8, 8)
    with pytest.raises(TypeError, match="training"):
        SRBatch(hr=hr)  # the flag is never implicit
    with pytest.raises(TypeError, match="must be a bool"):
        SRBatch(hr=hr, training="yes")
    with pytest.raises(ValueError, match=r"hr must be \(B, C, H, W\), got shape \(3, 8, 8\)"):
        SRBatch(hr=hr[0], training=True)
    with pytest.raises(ValueError, match="lr must be"):
        SRBatch(hr=hr, lr=torch.zeros(1, 3, 4, 4), training=True)
    with pytest.raises(ValueError, match="hr_usm"):
        SRBatch(hr=hr, hr_usm=torch.zeros(2, 3, 4, 4), training=True)
    with pytest.raises(ValueError, match="1 names for 2 images"):
        SRBatch(hr=hr, names=["a.png"], training=False)
    with pytest.raises(ValueError, match="indices"):
        SRBatch(hr=hr, indices=torch.arange(3), training=False)
    with pytest.raises(ValueError, match="scale"):
        SRBatch(hr=hr, scale=0, training=True)


# ---- uint8 -> float -------------------------------------------------------------------------------------------------
def test_to_float_is_exact_and_idempotent():
    hr, lr = _u8(2, 3, 8, 8), _u8(2, 3, 4, 4, seed=1)
    batch = SRBatch(hr=hr, lr=lr, training=True).to_float()
    assert batch.hr.dtype == torch.float32 and batch.lr.dtype == torch.float32
    assert torch.equal(batch.hr * 255, hr.float()) and torch.equal(batch.lr, lr.float() / 255)
    assert float(SRBatch(hr=torch.full((1, 1, 1, 1), 255, dtype=torch.uint8), training=True).to_float().hr) == 1.0
    assert batch.to_float() is batch  # float batches are left alone
    assert torch.equal(hr, _u8(2, 3, 8, 8))  # the uint8 input is untouched


# ---- device moves ---------------------------------------------------------------------------------------------------
def test_lightning_moves_the_whole_batch():
    """Lightning's ``move_data_to_device`` (what ``transfer_batch_to_device`` does) calls ``SRBatch.to``."""
    batch = collate(_val_items(), training=False)
    moved = move_data_to_device(batch, torch.device("meta"))
    assert isinstance(moved, SRBatch) and moved is not batch
    assert moved.hr.device.type == "meta" and moved.indices.device.type == "meta"
    assert moved.hr.dtype == torch.uint8 and moved.hr.shape == batch.hr.shape
    assert moved.names == batch.names and moved.training is False
    assert batch.hr.device.type == "cpu"  # the original stays where it was


def test_to_copies_to_accelerators_without_blocking():
    from torch.utils._python_dispatch import TorchDispatchMode

    class Copies(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.flags: list[bool] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is torch.ops.aten._to_copy.default:
                self.flags.append(bool(kwargs.get("non_blocking", False)))
            return func(*args, **kwargs)

    batch = SRBatch(hr=torch.zeros(1, 3, 4, 4), lr=torch.zeros(1, 3, 2, 2), training=True)
    spy = Copies()
    with spy:
        batch.to("meta")  # an accelerator-like device: non-blocking, as Lightning copies tensors
    assert spy.flags == [True, True]
    assert batch.to("cpu").hr is batch.hr  # no copy to the same device


def test_pin_memory_pins_every_tensor(monkeypatch):
    """A ``DataLoader(pin_memory=True)`` calls ``SRBatch.pin_memory`` (page-locking needs CUDA, so here each
    tensor's ``pin_memory`` is recorded instead; the real pinning is a GPU check: experiments/gpu_check)."""
    pinned = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: pinned.append(tuple(self.shape)) or self.clone())
    batch = collate(_val_items(), training=False)
    out = batch.pin_memory()
    assert sorted(pinned) == sorted([(2, 3, 16, 16), (2,)])
    assert isinstance(out, SRBatch) and out.names == batch.names and out.training is False
    assert torch.equal(out.hr, batch.hr) and out.hr is not batch.hr


def test_lightning_fit_delivers_typed_batches_with_the_flag(tmp_path):
    """Through a real Trainer: training batches arrive as float SRBatch with ``training=True`` and the LR made by
    the degradation; validation batches with ``training=False`` and their names."""

    class Probe(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))
            self.seen: list[tuple] = []

        def training_step(self, batch, batch_idx):
            self.seen.append(("train", type(batch), batch.training, batch.hr.dtype, tuple(batch.lr.shape), None))
            return (self.w - batch.lr.mean()) ** 2

        def validation_step(self, batch, batch_idx):
            self.seen.append(("val", type(batch), batch.training, batch.hr.dtype, tuple(batch.lr.shape),
                              batch.names))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = SampleDataModule(scale=2, degradation=BicubicDegradation(2), train_photos=["chelsea"],
                          val_photos=["coffee"], patch_size=16, batch_size=2, num_workers=0, repeat=2, val_crop=32)
    probe = Probe()
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
                        limit_val_batches=1, default_root_dir=tmp_path)
    trainer.fit(probe, datamodule=dm)
    assert probe.seen[0] == ("train", SRBatch, True, torch.float32, (2, 3, 8, 8), None)
    assert probe.seen[-1] == ("val", SRBatch, False, torch.float32, (1, 3, 16, 16), ["coffee.png"])
    assert dm.position.consumed == 1  # only the training batch advanced the loader position


# ---- one degradation interface --------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: BicubicDegradation(2),
    lambda: ClassicalDegradation(scale=2, seed=0),
    lambda: RealESRGANDegradation(scale=2, seed=0, queue_size=0, usm_radius=5),
])
def test_every_pipeline_maps_a_batch_to_a_batch(make):
    deg = make()
    assert isinstance(deg, Degradation)
    batch = collate(_val_items(), training=False)
    out = deg(batch)
    assert isinstance(out, SRBatch) and out.training is False
    assert out.names == batch.names and torch.equal(out.indices, batch.indices)
    assert out.hr.dtype == torch.float32 and torch.equal(out.hr * 255, batch.hr.float())
    assert out.lr.shape == (2, 3, 8, 8) and out.lr.dtype == torch.float32
    assert (out.hr_usm is not None) == isinstance(deg, RealESRGANDegradation)
    assert torch.equal(deg(batch).lr, out.lr)  # validation batches: deterministic
    assert deg(batch.replace(scale=4)).lr.shape == (2, 3, 4, 4)  # a batch's own scale wins
    assert isinstance(deg.state_dict(), dict)


def test_configured_degradations_are_the_interface():
    from tests.test_degradation_pipelines import compose_train

    for name in ("bicubic", "classical", "realesrgan"):
        assert isinstance(instantiate(compose_train(f"degradation={name}").degradation), Degradation), name


def test_a_datamodule_refuses_a_callable_that_is_not_a_degradation():
    with pytest.raises(ValueError, match=r"degradation: function is not a degradation pipeline; expected a "
                                         r"src.degradations.base.Degradation \(SRBatch -> SRBatch\)"):
        SampleDataModule(scale=2, degradation=lambda hr: hr[..., ::2, ::2], train_photos=["chelsea"],
                         val_photos=["coffee"], patch_size=16)
