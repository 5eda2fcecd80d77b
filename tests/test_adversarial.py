"""AdversarialSR: step order (D frozen in the G step, fake detached in the D step), RaGAN / vanilla / WGAN-GP
paths, EMA, step counting and resume of both optimizers."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from src.data import SampleDataModule
from src.degradations.pipelines import BicubicDegradation
from src.methods import AdversarialSR

ADAM = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}




class SpyAdversarialSR(AdversarialSR):
    """Records, for every backward, whether D was frozen and which parameters the loss reaches."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.backwards: list[dict] = []

    def manual_backward(self, loss, *args, **kwargs):
        g_params = [p for p in self.sr.parameters() if p.requires_grad]
        d_params = [p for p in self.net_d.parameters() if p.requires_grad]
        reach = torch.autograd.grad(loss, g_params + d_params, retain_graph=True, allow_unused=True)
        self.backwards.append({
            "d_frozen": not d_params,
            "reaches_g": any(g is not None and g.abs().sum() > 0 for g in reach[: len(g_params)]),
            "reaches_d": any(g is not None and g.abs().sum() > 0 for g in reach[len(g_params):]),
        })
        super().manual_backward(loss, *args, **kwargs)


def make_method(gan_type: str = "ragan", cls=AdversarialSR, **kwargs) -> AdversarialSR:
    arch = {"_target_": "src.archs.MSRResNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 4, "num_block": 1,
            "upscale": 2}
    disc = {"_target_": "src.archs.VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": 4, "input_size": 32}
    defaults = dict(
        name="gan", arch=arch, scale=2, loss={"pixel": {"_target_": "src.losses.PixelLoss", "criterion": "l1"}},
        optimizer=ADAM, optimizer_d=ADAM, discriminator=disc, gan={"type": gan_type, "loss_weight": 0.1},
    )
    return cls(**{**defaults, **kwargs})


def datamodule() -> SampleDataModule:
    return SampleDataModule(
        scale=2, degradation=BicubicDegradation(2), train_photos=["chelsea"], val_photos=["coffee"], patch_size=32,
        batch_size=2, num_workers=0, repeat=8, val_crop=64, val_name="sample",
    )


def fit(method, tmp_path, max_steps: int, ckpt_path=None) -> L.Trainer:
    trainer = L.Trainer(
        max_steps=max_steps, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        limit_val_batches=0, num_sanity_val_steps=0, default_root_dir=tmp_path,
        callbacks=[L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)],
    )
    trainer.fit(method, datamodule=datamodule(), ckpt_path=ckpt_path)
    return trainer


@pytest.mark.parametrize("gan_type", ["ragan", "vanilla", "wgan_gp"])
def test_one_step_updates_the_right_networks(gan_type, tmp_path):
    torch.manual_seed(0)
    method = make_method(gan_type, cls=SpyAdversarialSR)
    g_before = [p.detach().clone() for p in method.sr.parameters()]
    d_before = [p.detach().clone() for p in method.net_d.parameters()]
    fit(method, tmp_path, max_steps=1)
    g_step, d_step = method.backwards
    assert g_step == {"d_frozen": True, "reaches_g": True, "reaches_d": False}  # D frozen in the G step
    assert d_step["reaches_d"] and not d_step["reaches_g"] and not d_step["d_frozen"]  # fake detached
    assert any(not torch.equal(a, b) for a, b in zip(g_before, method.sr.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, method.net_d.parameters()))


def test_content_only_before_net_d_init_iters(tmp_path):
    torch.manual_seed(0)
    method = make_method(cls=SpyAdversarialSR, net_d_init_iters=2)
    d_before = [p.detach().clone() for p in method.net_d.parameters()]
    trainer = fit(method, tmp_path, max_steps=2)
    assert len(method.backwards) == 2  # two G steps, no D step
    assert all(torch.equal(a, b) for a, b in zip(d_before, method.net_d.parameters()))
    assert trainer.global_step == 2


def test_global_step_counts_iterations_and_resume_restores_both_optimizers(tmp_path):
    torch.manual_seed(0)
    trainer = fit(make_method(), tmp_path, max_steps=3)
    assert trainer.global_step == 3  # the D step does not count
    ckpt = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=True)
    assert len(ckpt["optimizer_states"]) == 2
    assert all(s["state"] for s in ckpt["optimizer_states"])  # Adam moments of G and of D
    resumed = make_method()
    trainer = fit(resumed, tmp_path / "resume", max_steps=5, ckpt_path=tmp_path / "last.ckpt")
    assert trainer.global_step == 5
    opt_g, opt_d = resumed.optimizers()
    steps = [int(next(iter(o.optimizer.state.values()))["step"]) for o in (opt_g, opt_d)]
    assert steps == [5, 5]  # continued from 3, not restarted


def test_ema_tracks_the_generator_and_runs_in_eval(tmp_path):
    torch.manual_seed(0)
    method = make_method(ema_decay=0.5)
    start = [p.detach().clone() for p in method.sr_ema.parameters()]
    fit(method, tmp_path, max_steps=1)
    for s, e, g in zip(start, method.sr_ema.parameters(), method.sr.parameters()):
        assert torch.allclose(e, 0.5 * s + 0.5 * g.detach(), atol=1e-7)  # one EMA update with decay 0.5
    x = torch.rand(1, 3, 8, 8)
    method.eval()
    assert torch.equal(method(x), method.sr_ema(x))
    method.train()
    assert torch.equal(method(x), method.sr(x))


def test_bad_gan_settings():
    with pytest.raises(ValueError, match="model.gan.type"):
        make_method("relativistic")
    with pytest.raises(ValueError, match="unknown keys"):
        make_method(gan={"type": "ragan", "weight": 1})
    with pytest.raises(ValueError, match="pretrained or model.weights"):
        make_method(pretrained="a.pth", weights="b.pth")


def test_auto_strategy_becomes_ddp_find_unused_for_gans_on_several_devices():
    from lightning.pytorch.strategies import DDPStrategy
    from omegaconf import OmegaConf

    from src.methods import SupervisedSR
    from src.training.run import build_strategy

    auto = OmegaConf.create({"name": "auto"})
    two = OmegaConf.create({"devices": 2, "num_nodes": 1})
    strategy = build_strategy(auto, AdversarialSR, two)
    assert isinstance(strategy, DDPStrategy) and strategy._ddp_kwargs.get("find_unused_parameters") is True
    assert build_strategy(auto, SupervisedSR, two) == "auto"
    assert build_strategy(auto, AdversarialSR, OmegaConf.create({"devices": 1, "num_nodes": 1})) == "auto"
