"""Mixed precision: every loss computes in fp32 under autocast, validation scores fp32 numbers, and clipping in
manual optimization acts on unscaled gradients (16-mixed, with a real GradScaler on the CPU)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch import nn

from src.data.batch import SRBatch
from src.losses import (
    CharbonnierLoss,
    GANLoss,
    MixLoss,
    MSSSIMLoss,
    PerceptualLoss,
    PixelLoss,
    RelativisticGANLoss,
    TVLoss,
    gradient_penalty,
    ms_ssim_map,
)


def _image_pair(size: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth target and a slightly noisy prediction near it (the regime where bf16 cancellation hurts)."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.avg_pool2d(torch.rand(2, 3, size + 4, size + 4, generator=gen), 5, 1)
    pred = (base + 0.01 * torch.randn(base.shape, generator=gen)).clamp(0, 1)
    return pred, base


def _value_and_grad(fn, pred: torch.Tensor, *, bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
    x = pred.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        value = fn(x)
    value.backward()
    return value.detach().float(), x.grad.detach().flatten()


def _check(fn, pred: torch.Tensor) -> None:
    v32, g32 = _value_and_grad(fn, pred, bf16=False)
    v16, g16 = _value_and_grad(fn, pred, bf16=True)
    assert float(v16) == pytest.approx(float(v32), rel=1e-4, abs=1e-12)
    g16, g32 = g16.double(), g32.double()
    cosine = (g16 @ g32) / (g16.norm() * g32.norm())  # F.cosine_similarity's eps would swamp tiny gradients
    assert g32.abs().sum() > 0 and float(cosine) >= 0.999


PIXEL_CASES = {
    "pixel_l1": PixelLoss("l1"),
    "pixel_mse": PixelLoss("mse", loss_weight=0.5),
    "pixel_charbonnier": PixelLoss("charbonnier"),
    "charbonnier": CharbonnierLoss(),
    "ms_ssim": MSSSIMLoss(),
    "mix": MixLoss(),
    "tv": TVLoss(0.1),
}


@pytest.mark.parametrize("name", sorted(PIXEL_CASES))
def test_image_losses_are_fp32_under_bf16_autocast(name):
    pred, target = _image_pair()
    loss = PIXEL_CASES[name]
    _check(lambda x: loss(x, target), pred)


def test_ms_ssim_map_is_fp32_for_bf16_inputs():
    """A bf16 network output still gets an fp32 MS-SSIM: the Gaussian windows and convolutions are fp32."""
    pred, target = _image_pair()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ms, kernel = ms_ssim_map(pred.bfloat16(), target)
    ref, _ = ms_ssim_map(pred.bfloat16().float(), target)
    assert ms.dtype == torch.float32 and kernel.dtype == torch.float32
    torch.testing.assert_close(ms, ref, rtol=0, atol=0)


@pytest.mark.parametrize("criterion", ["l1", "l2", "fro"])
def test_vgg_perceptual_and_style_are_fp32_under_bf16_autocast(criterion):
    torch.manual_seed(0)
    loss = PerceptualLoss({"conv3_4": 0.5, "conv5_4": 1.0}, criterion=criterion, style_weight=1.0,
                          weights="random")
    pred, target = _image_pair(size=32)
    _check(lambda x: loss(x, target)[0], pred)
    _check(lambda x: loss(x, target)[1], pred)


@pytest.mark.parametrize("gan_type", ["vanilla", "lsgan", "hinge", "wgan"])
@pytest.mark.parametrize("is_disc", [False, True])
@pytest.mark.parametrize("real", [False, True])
def test_gan_criteria_are_fp32_under_bf16_autocast(gan_type, is_disc, real):
    logits = torch.randn(4, 1, 6, 6, generator=torch.Generator().manual_seed(1)) * 3
    loss = GANLoss(gan_type, loss_weight=0.1)
    _check(lambda x: loss(x, real, is_disc=is_disc), logits)


def test_relativistic_gan_is_fp32_under_bf16_autocast():
    gen = torch.Generator().manual_seed(2)
    real, fake = torch.randn(4, 1, generator=gen) * 3, torch.randn(4, 1, generator=gen) * 3
    loss = RelativisticGANLoss(0.005)
    _check(lambda x: loss.generator(real, x), fake)
    _check(lambda x: loss.discriminator(real, x), fake)
    _check(lambda x: sum(loss.discriminator_terms(x, fake)), real)
    d_real, d_fake = loss.discriminator_terms(real, fake)
    assert float(d_real + d_fake) == pytest.approx(float(loss.discriminator(real, fake)), rel=1e-6)


def _tiny_disc() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 3, padding=1))


def test_wgan_gp_is_fp32_under_bf16_autocast_and_unscales_a_gradscaler():
    disc = _tiny_disc()
    real, fake = _image_pair(size=16)

    def run(bf16: bool, scaler=None) -> tuple[float, torch.Tensor]:
        disc.zero_grad()
        torch.manual_seed(4)  # the same interpolation weights in every call
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            value = gradient_penalty(disc, real, fake, 10.0, scaler=scaler)
        value.backward()  # the penalty's gradient reaches D's parameters (fake/real are detached)
        grads = [p.grad.flatten() for p in disc.parameters() if p.grad is not None]  # the last bias has none
        return float(value.detach()), torch.cat(grads).double()

    v32, g32 = run(False)
    for value, grad in (run(True), run(False, torch.amp.GradScaler("cpu", init_scale=2.0**16))):
        assert value == pytest.approx(v32, rel=1e-4)
        assert float(grad @ g32 / (grad.norm() * g32.norm())) >= 0.999


# ---- methods: validation in fp32, fp32 pre/post-processing of Y models ----------------------------------------
def _supervised(color: str = "rgb", input: str = "lr"):
    from src.methods import SupervisedSR

    torch.manual_seed(0)
    ch = 1 if color == "y" else 3
    arch = ({"_target_": "src.archs.ESPCN", "upscale": 2, "num_in_ch": ch, "num_out_ch": ch, "num_feat": 8}
            if input == "lr" else {"_target_": "src.archs.SRCNN", "num_in_ch": 1, "num_out_ch": 1})
    return SupervisedSR(name="m", arch=arch, scale=2, input=input, color=color, loss="l1",
                        optimizer={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3})


@pytest.mark.parametrize("color,input", [("rgb", "lr"), ("y", "lr"), ("y", "bicubic")])
def test_forward_pre_and_post_processing_is_fp32_under_autocast(color, input):
    """Only the network runs in bf16: the bicubic input, Y extraction and Cb/Cr of Y models stay fp32."""
    method = _supervised(color, input).eval()
    lr = _image_pair(size=20)[0]
    with torch.no_grad():
        ref = method(lr)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = method(lr)
    assert out.dtype == torch.float32
    if color == "y":  # chroma is untouched by the network: it must be fp32-exact
        from src.imaging.colorspace import rgb_to_ycbcr

        torch.testing.assert_close(rgb_to_ycbcr(out)[:, 1:], rgb_to_ycbcr(ref)[:, 1:], rtol=0, atol=1e-6)
    assert (out - ref).abs().max() < 0.05  # the network itself ran in bf16


def test_validation_scores_fp32_numbers_under_autocast():
    method = _supervised()
    gen = torch.Generator().manual_seed(5)
    batch = SRBatch(lr=torch.rand(1, 3, 24, 24, generator=gen), hr=torch.rand(1, 3, 48, 48, generator=gen),
                    names=["x.png"], training=False)
    method.log = lambda *a, **k: None  # not attached to a trainer
    ref = method.validation_step(batch, 0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = method.validation_step(batch, 0)
    assert out["sr"].dtype == torch.float32
    torch.testing.assert_close(out["sr"], ref["sr"], rtol=0, atol=0)
    assert out["psnr_y"] == ref["psnr_y"] and out["ssim_y"] == ref["ssim_y"]


# ---- clipping under 16-mixed acts on unscaled gradients -------------------------------------------------------
@pytest.mark.parametrize("which", ["g", "d"])
def test_manual_clipping_acts_on_unscaled_gradients_under_16_mixed(which, tmp_path):
    from tests.test_adversarial import datamodule, make_method

    sgd = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 1.0}
    limit = 1e-3
    kwargs = {f"grad_clip_{which}": limit}
    torch.manual_seed(0)
    method = make_method("vanilla", optimizer=sgd, optimizer_d=sgd, **kwargs)
    net = method.sr if which == "g" else method.net_d
    before = [p.detach().clone() for p in net.parameters()]
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1000)
    trainer = L.Trainer(
        max_steps=1, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        limit_val_batches=0, num_sanity_val_steps=0, default_root_dir=tmp_path, enable_checkpointing=False,
        plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)],
    )
    trainer.fit(method, datamodule=datamodule())
    assert scaler.get_scale() == 2.0**10  # no inf/NaN step was skipped
    change = torch.cat([(p.detach() - b).flatten() for p, b in zip(net.parameters(), before)])
    # the true gradient norm is far above the limit, so SGD(lr=1) moves the parameters by exactly `limit`;
    # clipping the scaled gradients would move them by limit / 1024
    assert float(change.norm()) == pytest.approx(limit, rel=1e-3)
