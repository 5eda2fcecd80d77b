"""SupervisedSR: per-layer learning rates, VDSR's θ/γ gradient clipping, multi-scale batches."""

from __future__ import annotations

import pytest
import torch

from src.data import SampleDataModule
from src.data.batch import SRBatch
from src.degradations.pipelines import BicubicDegradation
from src.methods import SupervisedSR

ADAM = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}


def srcnn_method(**kwargs) -> SupervisedSR:
    arch = {"_target_": "src.archs.SRCNN", "num_in_ch": 1, "num_out_ch": 1, "num_feat": 8, "num_feat2": 4}
    defaults = dict(name="srcnn", arch=arch, scale=4, input="bicubic", color="y", loss="mse", optimizer=ADAM)
    return SupervisedSR(**{**defaults, **kwargs})


def test_lr_multipliers_make_param_groups():
    method = srcnn_method(lr_multipliers={"conv3": 0.1})
    groups = method._param_groups()
    by_lr = {round(g["lr"], 9): sum(p.numel() for p in g["params"]) for g in groups}
    conv3 = sum(p.numel() for p in method.net.conv3.parameters())
    assert by_lr == {1e-3: sum(p.numel() for p in method.net.parameters()) - conv3, 1e-4: conv3}
    with pytest.raises(ValueError, match="match no parameter"):
        srcnn_method(lr_multipliers={"deconv": 0.1})._param_groups()


def test_theta_over_gamma_clipping():
    method = srcnn_method(grad_clip_theta=0.01)
    optimizer = torch.optim.SGD(method.parameters(), lr=0.1)
    for p in method.parameters():
        p.grad = torch.full_like(p, 5.0)
        p.grad.view(-1)[0] = -5.0
    method.configure_gradient_clipping(optimizer)
    grads = torch.cat([p.grad.flatten() for p in method.parameters()])
    assert grads.max().item() == pytest.approx(0.1) and grads.min().item() == pytest.approx(-0.1)  # θ/γ = 0.1
    optimizer.param_groups[0]["lr"] = 0.001  # a lower rate loosens the bound to 10
    for p in method.parameters():
        p.grad = torch.full_like(p, 5.0)
    method.configure_gradient_clipping(optimizer)
    assert all(torch.all(p.grad == 5.0) for p in method.parameters())
    with pytest.raises(ValueError, match="either"):
        method.configure_gradient_clipping(optimizer, gradient_clip_val=0.5)


def test_multiscale_batches_and_training_step():
    torch.manual_seed(0)
    dm = SampleDataModule(
        scale=3, degradation=BicubicDegradation(3), train_photos=["chelsea"], val_photos=["coffee"],
        patch_size=41, batch_size=2, num_workers=0, repeat=24, train_scales=[2, 3, 4],
    )
    dm.setup("fit")
    method = srcnn_method(scale=3)
    seen = set()
    for batch in dm.train_dataloader():
        batch = dm.on_after_batch_transfer(batch, 0)
        s = batch.scale
        seen.add(s)
        assert batch.hr.shape[-1] == 41 - 41 % s and batch.lr.shape[-1] == (41 - 41 % s) // s
        assert torch.equal(batch.lr, BicubicDegradation(s)(SRBatch(hr=batch.hr, training=False)).lr)
        loss = method.training_step(batch, 0)
        assert torch.isfinite(loss)
    assert seen == {2, 3, 4}
    val = dm.on_after_batch_transfer(SRBatch(hr=dm.val_set[0]["hr"][None], names=["coffee.png"], training=False), 0)
    assert val.scale is None and val.lr.shape[-1] == 600 // 3


def test_upsampling_networks_refuse_other_scales():
    arch = {"_target_": "src.archs.ESPCN", "num_in_ch": 3, "num_out_ch": 3, "upscale": 4}
    method = SupervisedSR(name="espcn", arch=arch, scale=4, optimizer=ADAM)
    with pytest.raises(ValueError, match="only pre-upsampling models"):
        method(torch.rand(1, 3, 8, 8), scale=2)
    assert method(torch.rand(1, 3, 8, 8), scale=4).shape == (1, 3, 32, 32)


def test_theta_over_gamma_norm_clipping():
    method = srcnn_method(grad_clip_theta=0.04, grad_clip_mode="norm")
    optimizer = torch.optim.SGD(method.parameters(), lr=0.1)
    for p in method.parameters():
        p.grad = torch.full_like(p, 1.0)
    method.configure_gradient_clipping(optimizer)
    norm = torch.cat([p.grad.flatten() for p in method.parameters()]).norm().item()
    assert norm == pytest.approx(0.4, rel=1e-4)  # θ/γ = 0.04 / 0.1
    with pytest.raises(ValueError, match="grad_clip_mode"):
        srcnn_method(grad_clip_mode="max")
