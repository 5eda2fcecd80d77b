"""Mix / MS-SSIM, adversarial criteria and the VGG perceptual loss against their formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision

from src.archs.vgg import VGGFeatureExtractor, vgg_layer_names
from src.losses import (
    GANLoss,
    MixLoss,
    MSSSIMLoss,
    PerceptualLoss,
    RelativisticGANLoss,
    TVLoss,
    gradient_penalty,
    gram_matrix,
)


def test_mix_loss_on_constant_images_equals_formula():
    # constant images: every variance/covariance is 0, so each cs term is C2/C2 = 1 and MS-SSIM = l(a, b)
    a, b, alpha = 0.7, 0.4, 0.84
    pred, target = torch.full((1, 3, 32, 32), a), torch.full((1, 3, 32, 32), b)
    c1 = 0.01**2
    luminance = (2 * a * b + c1) / (a * a + b * b + c1)
    expected = alpha * (1 - luminance) + (1 - alpha) * abs(a - b)
    assert MixLoss()(pred, target).item() == pytest.approx(expected, rel=1e-4)
    assert MSSSIMLoss()(pred, target).item() == pytest.approx(1 - luminance, rel=1e-4)
    assert MixLoss(alpha=0.0, loss_weight=2.0)(pred, target).item() == pytest.approx(2 * abs(a - b), rel=1e-4)


def test_ms_ssim_loss_identical_zero_and_gradients():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 40, 40)
    assert MSSSIMLoss()(x, x).item() == pytest.approx(0.0, abs=1e-6)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1).requires_grad_(True)
    loss = MixLoss()(y, x)
    loss.backward()
    assert loss.item() > 0 and y.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="at least 25x25"):
        MixLoss()(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))


def test_relativistic_gan_against_formula():
    real = torch.tensor([2.0, -1.0, 0.5])
    fake = torch.tensor([-0.5, 1.5, 0.0])

    def bce(x: float, target: float) -> float:  # BCE with logits
        p = 1 / (1 + math.exp(-x))
        return -(target * math.log(p) + (1 - target) * math.log(1 - p))

    mr, mf = real.mean().item(), fake.mean().item()
    d_expected = 0.5 * (sum(bce(r - mf, 1) for r in real.tolist()) / 3 + sum(bce(f - mr, 0) for f in fake.tolist()) / 3)
    g_expected = 0.5 * (sum(bce(r - mf, 0) for r in real.tolist()) / 3 + sum(bce(f - mr, 1) for f in fake.tolist()) / 3)
    ragan = RelativisticGANLoss(loss_weight=5e-3)
    assert ragan.discriminator(real, fake).item() == pytest.approx(d_expected, rel=1e-6)
    assert ragan.generator(real, fake).item() == pytest.approx(5e-3 * g_expected, rel=1e-6)


def test_standard_gan_losses_on_fixed_logits():
    x = torch.tensor([1.0, -2.0])
    sig = torch.sigmoid(x)
    assert GANLoss("vanilla")(x, True, is_disc=True).item() == pytest.approx(-torch.log(sig).mean().item(), rel=1e-6)
    assert GANLoss("vanilla", loss_weight=1e-3)(x, True).item() == pytest.approx(-1e-3 * torch.log(sig).mean().item())
    assert GANLoss("lsgan")(x, False, is_disc=True).item() == pytest.approx((1 + 4) / 2)
    assert GANLoss("hinge")(x, True, is_disc=True).item() == pytest.approx((0 + 3) / 2)
    assert GANLoss("hinge")(x, False, is_disc=True).item() == pytest.approx((2 + 0) / 2)
    assert GANLoss("hinge", loss_weight=0.1)(x, True).item() == pytest.approx(0.1 * 0.5)
    assert GANLoss("wgan")(x, True, is_disc=True).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="gan_type"):
        GANLoss("ragan")


def test_gradient_penalty_of_a_linear_critic():
    w = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)  # ‖∇D‖ = 5 everywhere

    def critic(x: torch.Tensor) -> torch.Tensor:
        return (x * w).sum(dim=(1, 2, 3))

    real, fake = torch.rand(4, 2, 1, 1), torch.rand(4, 2, 1, 1)
    assert gradient_penalty(critic, real, fake, weight=10.0).item() == pytest.approx(10.0 * 16.0)


def test_gram_and_tv():
    x = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, 2, 1, 2)
    assert torch.allclose(gram_matrix(x), torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4)
    img = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])
    assert TVLoss()(img).item() == pytest.approx(0.5 + 0.5)


def test_vgg_layer_selection_pre_and_post_activation():
    torch.manual_seed(0)
    vgg = VGGFeatureExtractor(["conv5_4", "relu5_4", "relu1_2"], weights="random")
    assert len(vgg.features) == vgg_layer_names("vgg19").index("relu5_4") + 1  # cut after the deepest layer
    x = torch.rand(1, 3, 32, 32)
    out = vgg(x)
    assert set(out) == {"conv5_4", "relu5_4", "relu1_2"} and out["relu1_2"].shape == (1, 64, 32, 32)
    assert torch.equal(out["relu5_4"], out["conv5_4"].clamp(min=0))
    assert out["conv5_4"].min() < 0  # the pre-activation features really are before the ReLU
    assert not any(p.requires_grad for p in vgg.parameters())
    with pytest.raises(ValueError, match="unknown VGG layer"):
        VGGFeatureExtractor(["conv5_5"], weights="random")


def test_perceptual_loss_deterministic_with_random_weights():
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    values = []
    for _ in range(2):
        torch.manual_seed(123)
        loss = PerceptualLoss({"conv3_4": 1.0, "relu2_2": 0.5}, weights="random", style_weight=1.0)
        values.append(tuple(v.item() for v in loss(x, y)))
    assert values[0] == values[1] and all(v > 0 for v in values[0])
    torch.manual_seed(123)
    percep, style = PerceptualLoss({"conv3_4": 1.0}, weights="random")(x, x)
    assert percep.item() == 0.0 and style is None


def test_imagenet_weights_read_from_torch_home_only(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"vgg19-dcbb9e9d\.pth.*hub/checkpoints") as info:
        VGGFeatureExtractor(["relu1_1"])
    assert "weights=random" in str(info.value)
    # with the file in the cache, torchvision's own loader is called with IMAGENET1K_V1
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth").write_bytes(b"")
    calls = []
    real_vgg19 = torchvision.models.vgg19

    def spy(weights=None):
        calls.append(weights)
        return real_vgg19(weights=None)

    monkeypatch.setattr(torchvision.models, "vgg19", spy)
    VGGFeatureExtractor(["relu1_1"])
    assert calls == ["IMAGENET1K_V1"]


def test_explicit_weights_path_is_loaded(tmp_path):
    torch.manual_seed(7)
    reference = torchvision.models.vgg19(weights=None)
    torch.save(reference.state_dict(), tmp_path / "my_vgg19.pth")
    vgg = VGGFeatureExtractor(["conv1_1"], weights_path=str(tmp_path / "my_vgg19.pth"))
    assert torch.equal(vgg.features[0].weight, reference.features[0].weight)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        VGGFeatureExtractor(["conv1_1"], weights_path=str(tmp_path / "missing.pth"))


def test_separable_gaussian_equals_dense_filter():
    import torch.nn.functional as F

    from src.losses.ssim_loss import _blur, _gaussian_kernel

    x = torch.rand(2, 3, 40, 40, dtype=torch.float64)
    k1 = _gaussian_kernel(4.0, 3, x.device, x.dtype)
    dense = (k1[0, 0, 0][:, None] * k1[0, 0, 0][None, :]).expand(3, 1, -1, -1)
    pad = dense.shape[-1] // 2
    reference = F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="reflect"), dense, groups=3)
    assert torch.allclose(_blur(x, k1), reference, atol=1e-12)
