"""Resuming reproduces the uninterrupted run: the same HR patches, LR batches (Real-ESRGAN degradation with its
training-pair pool, multi-scale draws) and losses, mid-epoch and across the epoch boundary."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from src.data import SampleDataModule
from src.degradations.pipelines import BicubicDegradation, RealESRGANDegradation
from src.methods import SupervisedSR


class Recorder(L.Callback):
    def __init__(self) -> None:
        self.batches: dict[int, dict[str, torch.Tensor]] = {}
        self.losses: dict[int, float] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step  # after the optimizer step: 1 for the first batch
        self.batches[step] = {k: v.detach().clone() for k, v in vars(batch).items() if isinstance(v, torch.Tensor)}
        self.losses[step] = float(outputs["loss"])


def _datamodule(kind: str, num_workers: int) -> SampleDataModule:
    if kind == "realesrgan":
        degradation = RealESRGANDegradation(scale=2, seed=7, queue_size=4, usm_radius=5)
        extra = {}
    else:  # multi-scale bicubic (VDSR-style)
        degradation, extra = BicubicDegradation(2), {"train_scales": [2, 3, 4]}
    return SampleDataModule(
        scale=2, degradation=degradation, train_photos=["chelsea", "rocket"], val_photos=["coffee"], patch_size=48,
        batch_size=2, num_workers=num_workers, repeat=2, val_crop=48, val_name="sample", **extra,
    )  # 4 patches per epoch: 2 batches, so 5 steps cross two epoch boundaries


def _method(kind: str) -> SupervisedSR:
    torch.manual_seed(0)
    arch = ({"_target_": "src.archs.ESPCN", "upscale": 2, "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8}
            if kind == "realesrgan" else {"_target_": "src.archs.SRCNN", "num_in_ch": 1, "num_out_ch": 1,
                                          "num_feat": 8, "num_feat2": 4})
    return SupervisedSR(name="m", arch=arch, scale=2, input="lr" if kind == "realesrgan" else "bicubic",
                        color="rgb" if kind == "realesrgan" else "y", loss="l1",
                        optimizer={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3})


def _fit(kind: str, num_workers: int, tmp_path, max_steps: int, ckpt_path=None, every: int | None = None):
    L.seed_everything(123)
    recorder = Recorder()
    callbacks = [recorder]
    if every:
        callbacks.append(L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=every,
                                                             save_top_k=-1, filename="{step}"))
    trainer = L.Trainer(
        max_steps=max_steps, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        limit_val_batches=0, num_sanity_val_steps=0, default_root_dir=tmp_path, enable_checkpointing=bool(every),
        callbacks=callbacks,
    )
    trainer.fit(_method(kind), datamodule=_datamodule(kind, num_workers), ckpt_path=ckpt_path)
    return recorder


@pytest.mark.parametrize("kind,num_workers", [("realesrgan", 0), ("multiscale", 0), ("realesrgan", 1)])
def test_resumed_run_reproduces_batches_and_losses(kind, num_workers, tmp_path):
    full = _fit(kind, num_workers, tmp_path / "full", max_steps=7, every=3)
    resumed = _fit(kind, num_workers, tmp_path / "resumed", max_steps=7, ckpt_path=tmp_path / "full" / "step=3.ckpt")
    assert sorted(resumed.batches) == [4, 5, 6, 7]
    for step in range(4, 8):
        a, b = full.batches[step], resumed.batches[step]
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (step, key)
        assert resumed.losses[step] == full.losses[step]
    # the stream really is random: batches differ from step to step
    assert not torch.equal(full.batches[4]["hr"], full.batches[5]["hr"])


def test_fresh_run_without_the_checkpoint_state_differs(tmp_path):
    """The check has teeth: a run restarted at step 3 from scratch draws other batches."""
    full = _fit("realesrgan", 0, tmp_path / "full", max_steps=5)
    again = _fit("realesrgan", 0, tmp_path / "again", max_steps=2)
    assert torch.equal(full.batches[1]["lr"], again.batches[1]["lr"])  # same seed, same start
    assert not torch.equal(full.batches[4]["lr"], again.batches[1]["lr"])
