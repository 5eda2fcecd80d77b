"""The degradation path makes no host-device synchronisation and runs in IEEE fp32; loss terms reach the
progress bar (which reads them back) only every ``log_every_n_steps``.

A GPU is not needed to check the first claim: the pipelines run on ``meta`` tensors (shapes only, no data), and a
dispatch mode records every op that would wait for a device: reading a device value on the host
(``.item()`` / ``bool()`` / ``int()``, i.e. ``aten._local_scalar_dense``), device-to-host copies and blocking
host-to-device copies. A control decision taken on device data could not even run on ``meta``.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from src.data.batch import SRBatch
from src.degradations.filtering import filter2d
from src.degradations.pipelines import BicubicDegradation, ClassicalDegradation, RealESRGANDegradation

aten = torch.ops.aten


class SyncSpy(TorchDispatchMode):
    """Records the ops that synchronise with a (here: ``meta``) device."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if func is aten._local_scalar_dense.default and tensors[0].device.type == "meta":
            self.events.append("host read of a device value")
            return func(torch.zeros((), dtype=tensors[0].dtype))
        if func is aten._to_copy.default and kwargs.get("device") is not None:
            src, dst = tensors[0].device.type, torch.device(kwargs["device"]).type
            if src == "cpu" and dst == "meta" and not kwargs.get("non_blocking", False):
                self.events.append(f"blocking host-to-device copy {tuple(tensors[0].shape)}")
            if src == "meta" and dst == "cpu":
                self.events.append("device-to-host copy")
        into_device = func is aten.copy_.default and (tensors[0].device.type, tensors[1].device.type) == ("meta", "cpu")
        if into_device and not (len(args) > 2 and args[2]) and not kwargs.get("non_blocking", False):
            self.events.append("blocking copy_ into a device tensor")
        return func(*args, **kwargs)


def test_the_spy_sees_syncs():
    spy = SyncSpy()
    with spy:
        bool(torch.empty(3, device="meta").any())
        torch.zeros(3).to("meta")
        filter2d(torch.empty(1, 3, 16, 16, device="meta"), torch.ones(1, 5, 5, device="meta"))  # device kernels
    assert len(spy.events) == 3


@pytest.mark.parametrize("make", [
    lambda: RealESRGANDegradation(scale=4, seed=1, queue_size=4),
    lambda: RealESRGANDegradation(scale=4, seed=2, queue_size=0, crop_size=32, final_sinc_prob=1.0),
    lambda: ClassicalDegradation(scale=4, seed=1, sinc_prob=0.5, jpeg_prob=0.5, noise_prob=0.7),
    lambda: ClassicalDegradation(scale=2, seed=3, resize_modes=["matlab_bicubic"], gaussian_noise_prob=0.0),
])
def test_training_batches_make_no_host_device_sync(make):
    degradation = make()
    hr = torch.empty(2, 3, 64, 64, device="meta")
    spy = SyncSpy()
    with spy:
        for _ in range(4):  # fills the pool (4 pairs), then swaps with it
            out = degradation(SRBatch(hr=hr, training=True))
    assert spy.events == []
    assert out.lr.device.type == "meta" and out.lr.shape[0] == 2


def test_kornia_operators_make_no_sync():
    """filter2d / the USM (kornia.filters) and grey Poisson noise (kornia.color), each on its own, every path:
    per-sample and shared CPU kernels, pads wider than the image, identity kernels."""
    from src.degradations.noise import poisson_noise
    from src.degradations.sharpen import usm_sharp

    spy = SyncSpy()
    with spy:
        for size in (64, 6):  # 6: pads wider than the image (the fallback around kornia)
            img = torch.empty(2, 3, size, size, device="meta")
            filter2d(img, torch.rand(2, 21, 21))
            filter2d(img, torch.nn.functional.pad(torch.ones(1, 1, 1), (10,) * 4))  # an identity kernel
            usm_sharp(img)
            poisson_noise(img, torch.tensor([1.0, 2.0]), gray=torch.tensor([True, True]))
    assert spy.events == []


def test_bicubic_degradation_makes_no_sync():
    spy = SyncSpy()
    with spy:
        lr = BicubicDegradation(4)(SRBatch(hr=torch.empty(2, 3, 64, 64, device="meta"), training=True)).lr
    assert spy.events == [] and tuple(lr.shape) == (2, 3, 16, 16)


def test_degradations_run_with_tf32_off_and_restore_the_settings(monkeypatch):
    import src.degradations.pipelines as pipelines

    seen = []
    original = pipelines.filter2d

    def spy_filter(*args, **kwargs):
        seen.append((torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision))
        return original(*args, **kwargs)

    monkeypatch.setattr(pipelines, "filter2d", spy_filter)
    before = (torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision)
    torch.backends.cudnn.conv.fp32_precision = "tf32"  # what Ampere users typically run with
    try:
        ClassicalDegradation(scale=2, seed=0)(SRBatch(hr=torch.rand(1, 3, 16, 16), training=True))
        assert seen and all(s == ("ieee", "ieee") for s in seen)
        assert torch.backends.cudnn.conv.fp32_precision == "tf32"
    finally:
        torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision = before


def test_loss_terms_reach_the_progress_bar_every_log_interval(tmp_path):
    """Each bar update reads the values back from the device: only every `log_every_n_steps` steps."""
    import lightning as L

    from src.methods import SupervisedSR
    from tests.test_adversarial import datamodule

    seen: list[float] = []

    class Bar(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            seen.append(trainer.progress_bar_metrics["l1"])

    torch.manual_seed(0)
    method = SupervisedSR(name="m", arch={"_target_": "src.archs.ESPCN", "upscale": 2, "num_in_ch": 3,
                                          "num_out_ch": 3, "num_feat": 8}, scale=2, loss="l1",
                          optimizer={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-2})
    trainer = L.Trainer(max_steps=7, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                        enable_checkpointing=False, log_every_n_steps=3, default_root_dir=tmp_path,
                        callbacks=[Bar()])
    trainer.fit(method, datamodule=datamodule())
    # logged at global steps 0, 3, 6: the bar holds one value for three batches
    assert seen[0] == seen[1] == seen[2] and seen[3] == seen[4] == seen[5] and seen[6] not in (seen[0], seen[3])
    assert seen[0] != seen[3]
