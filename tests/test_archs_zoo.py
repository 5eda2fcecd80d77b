"""The network zoo: BasicSR-compatible signatures and key names, paper parameter counts, shapes, argument checks,
and derived invariants for the networks BasicSR does not ship (VDSR, RDN, SRResNet).

Numerical fidelity to BasicSR itself is checked in ``test_basicsr_reference.py``.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from src.archs import (
    EDSR,
    ESPCN,
    FSRCNN,
    RCAN,
    RDN,
    SRCNN,
    VDSR,
    MSRResNet,
    RRDBNet,
    SRGANDiscriminator,
    SRResNet,
    SRVGGNetCompact,
    UNetDiscriminatorSN,
    VGGStyleDiscriminator,
)

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(cls, *args, **kwargs) -> nn.Module:
    """Build on the meta device: shapes and counts without allocating or initialising 40M weights."""
    with torch.device("meta"):
        return cls(*args, **kwargs)


def shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# --- constructor signatures: BasicSR / Real-ESRGAN argument names, order and defaults ------------------------
BASICSR_SIGNATURES = {
    EDSR: [
        ("num_in_ch", None),
        ("num_out_ch", None),
        ("num_feat", 64),
        ("num_block", 16),
        ("upscale", 4),
        ("res_scale", 1),
        ("img_range", 255.0),
        ("rgb_mean", DIV2K_MEAN),
    ],
    RCAN: [
        ("num_in_ch", None),
        ("num_out_ch", None),
        ("num_feat", 64),
        ("num_group", 10),
        ("num_block", 16),
        ("squeeze_factor", 16),
        ("upscale", 4),
        ("res_scale", 1),
        ("img_range", 255.0),
        ("rgb_mean", DIV2K_MEAN),
    ],
    RRDBNet: [
        ("num_in_ch", None),
        ("num_out_ch", None),
        ("scale", 4),
        ("num_feat", 64),
        ("num_block", 23),
        ("num_grow_ch", 32),
    ],
    MSRResNet: [("num_in_ch", 3), ("num_out_ch", 3), ("num_feat", 64), ("num_block", 16), ("upscale", 4)],
    SRVGGNetCompact: [
        ("num_in_ch", 3),
        ("num_out_ch", 3),
        ("num_feat", 64),
        ("num_conv", 16),
        ("upscale", 4),
        ("act_type", "prelu"),
    ],
    VGGStyleDiscriminator: [("num_in_ch", None), ("num_feat", None), ("input_size", 128)],
    UNetDiscriminatorSN: [("num_in_ch", None), ("num_feat", 64), ("skip_connection", True)],
    # not in BasicSR: the brief's signatures
    VDSR: [("num_in_ch", 1), ("num_out_ch", 1), ("num_feat", 64), ("num_layers", 20)],
    SRResNet: [("num_in_ch", 3), ("num_out_ch", 3), ("num_feat", 64), ("num_block", 16), ("upscale", 4)],
    RDN: [
        ("num_in_ch", 3),
        ("num_out_ch", 3),
        ("num_feat", 64),
        ("num_block", 16),
        ("num_conv", 8),
        ("num_grow_ch", 64),
        ("upscale", 4),
        ("img_range", 255.0),
    ],
}


@pytest.mark.parametrize("cls", list(BASICSR_SIGNATURES), ids=lambda c: c.__name__)
def test_signature(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    got = [(p.name, None if p.default is inspect.Parameter.empty else p.default) for p in params]
    assert got == BASICSR_SIGNATURES[cls]


def test_existing_archs_still_exported():
    import src.archs as archs

    assert {"SRCNN", "FSRCNN", "ESPCN"} <= set(archs.__all__)
    assert SRCNN and FSRCNN and ESPCN


# --- parameter counts of the paper configurations (x4, RGB unless stated) -----------------------------------
@pytest.fixture(scope="module")
def paper_models() -> dict[str, nn.Module]:
    return {
        "edsr": on_meta(EDSR, 3, 3, num_feat=256, num_block=32, upscale=4, res_scale=0.1),
        "edsr_baseline": on_meta(EDSR, 3, 3, num_feat=64, num_block=16, upscale=4),
        "rcan": on_meta(RCAN, 3, 3, num_group=10, num_block=20, upscale=4),
        "rdn": on_meta(RDN, 3, 3, upscale=4),
        "rrdbnet": on_meta(RRDBNet, 3, 3, scale=4, num_feat=64, num_block=23, num_grow_ch=32),
        "msrresnet": on_meta(MSRResNet),
        "srresnet": on_meta(SRResNet),
        "vdsr": on_meta(VDSR, 1, 1),
    }


# exact counts, and the figure the issue quotes (rounded to 0.01M / 0.1M)
PAPER_COUNTS = {
    "edsr": (43_089_923, "43.1M"),  # BasicSR layout; official EDSR adds 2 x 12 frozen MeanShift params
    "edsr_baseline": (1_517_571, "1.52M"),
    "rcan": (15_592_355, "15.6M"),  # official RCAN: + 24 MeanShift params = 15,592,379
    "rdn": (22_271_107, "22.3M"),
    "rrdbnet": (16_697_987, "16.7M"),
    "msrresnet": (1_517_571, "1.52M"),
    "srresnet": (1_547_350, "1.55M"),
    "vdsr": (665_921, "0.67M"),
}


@pytest.mark.parametrize("name", list(PAPER_COUNTS))
def test_paper_parameter_counts(paper_models, name):
    exact, quoted = PAPER_COUNTS[name]
    count = n_params(paper_models[name])
    assert count == exact
    digits = len(quoted.split(".")[1]) - 1
    assert f"{count / 1e6:.{digits}f}M" == quoted


def test_vdsr_count_by_hand():
    # 3x3x1x64 + 64 | 18 x (3x3x64x64 + 64) | 3x3x64x1 + 1
    assert n_params(on_meta(VDSR)) == (576 + 64) + 18 * (36_864 + 64) + (576 + 1)


def test_rdn_count_by_hand():
    g0 = g = 64
    rdb = sum(9 * (g0 + c * g) * g + g for c in range(8)) + (g0 + 8 * g) * g0 + g0
    sfe = (9 * 3 * g0 + g0) + (9 * g0 * g0 + g0)
    gff = (16 * g0 * g0 + g0) + (9 * g0 * g0 + g0)
    up = (9 * g0 * 4 * g + 4 * g) + (9 * g * 4 * g + 4 * g) + (9 * g * 3 + 3)
    assert n_params(on_meta(RDN)) == sfe + 16 * rdb + gff + up == 22_271_107


# --- key names and shapes ------------------------------------------------------------------------------------
def test_edsr_keys(paper_models):
    s = shapes(paper_models["edsr"])
    assert s["conv_first.weight"] == (256, 3, 3, 3)
    assert s["body.31.conv2.weight"] == (256, 256, 3, 3)
    assert s["conv_after_body.bias"] == (256,)
    assert s["upsample.0.weight"] == s["upsample.2.weight"] == (1024, 256, 3, 3)
    assert s["conv_last.weight"] == (3, 256, 3, 3)
    assert "mean" not in s  # a non-persistent buffer, as in BasicSR
    assert shapes(on_meta(EDSR, 3, 3, upscale=3))["upsample.0.weight"] == (576, 64, 3, 3)


def test_rcan_keys(paper_models):
    s = shapes(paper_models["rcan"])
    assert s["body.9.residual_group.19.rcab.0.weight"] == (64, 64, 3, 3)
    assert s["body.9.residual_group.19.rcab.2.weight"] == (64, 64, 3, 3)
    assert s["body.0.residual_group.0.rcab.3.attention.1.weight"] == (4, 64, 1, 1)
    assert s["body.0.residual_group.0.rcab.3.attention.3.weight"] == (64, 4, 1, 1)
    assert s["body.9.conv.weight"] == (64, 64, 3, 3)
    assert {"conv_first.weight", "conv_after_body.weight", "upsample.2.weight", "conv_last.bias"} <= set(s)


def test_rrdbnet_keys(paper_models):
    s = shapes(paper_models["rrdbnet"])
    assert s["body.22.rdb3.conv5.weight"] == (64, 64 + 4 * 32, 3, 3)
    assert s["body.0.rdb1.conv1.weight"] == (32, 64, 3, 3)
    for k in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        assert s[f"{k}.weight"] == (64, 64, 3, 3)
    assert s["conv_last.weight"] == (3, 64, 3, 3)
    assert shapes(on_meta(RRDBNet, 3, 3, scale=2, num_block=1))["conv_first.weight"] == (64, 12, 3, 3)
    assert shapes(on_meta(RRDBNet, 3, 3, scale=1, num_block=1))["conv_first.weight"] == (64, 48, 3, 3)


def test_msrresnet_keys(paper_models):
    s = shapes(paper_models["msrresnet"])
    assert list(s)[:3] == ["conv_first.weight", "conv_first.bias", "body.0.conv1.weight"]
    assert s["upconv1.weight"] == s["upconv2.weight"] == (256, 64, 3, 3)
    assert {"conv_hr.weight", "conv_last.weight"} <= set(s)
    s3 = shapes(on_meta(MSRResNet, upscale=3))
    assert s3["upconv1.weight"] == (576, 64, 3, 3) and "upconv2.weight" not in s3


def test_srresnet_keys(paper_models):
    s = shapes(paper_models["srresnet"])
    assert s["conv_first.weight"] == (64, 3, 9, 9) and s["act_first.weight"] == (1,)
    assert s["body.15.conv1.weight"] == (64, 64, 3, 3) and "body.15.conv1.bias" not in s
    assert s["body.15.bn2.running_var"] == (64,) and s["body.0.act.weight"] == (1,)
    assert s["conv_after_body.weight"] == (64, 64, 3, 3) and "bn_after_body.weight" in s
    assert s["upsample.0.weight"] == s["upsample.3.weight"] == (256, 64, 3, 3)
    assert s["upsample.2.weight"] == s["upsample.5.weight"] == (1,)
    assert s["conv_last.weight"] == (3, 64, 9, 9) and s["conv_last.bias"] == (3,)


def test_rdn_keys(paper_models):
    s = shapes(paper_models["rdn"])
    assert s["SFENet1.weight"] == (64, 3, 3, 3) and s["SFENet2.weight"] == (64, 64, 3, 3)
    assert s["RDBs.15.convs.7.conv.0.weight"] == (64, 64 + 7 * 64, 3, 3)
    assert s["RDBs.0.LFF.weight"] == (64, 64 + 8 * 64, 1, 1)
    assert s["GFF.0.weight"] == (64, 16 * 64, 1, 1) and s["GFF.1.weight"] == (64, 64, 3, 3)
    assert s["UPNet.0.weight"] == s["UPNet.2.weight"] == (256, 64, 3, 3)
    assert s["UPNet.4.weight"] == (3, 64, 3, 3)
    s3 = shapes(on_meta(RDN, num_block=2, upscale=3))
    assert s3["UPNet.0.weight"] == (576, 64, 3, 3) and s3["UPNet.2.weight"] == (3, 64, 3, 3)
    assert "UPNet.4.weight" not in s3


def test_vdsr_keys(paper_models):
    s = shapes(paper_models["vdsr"])
    assert list(s) == [f"layers.{i}.{p}" for i in range(20) for p in ("weight", "bias")]
    assert s["layers.0.weight"] == (64, 1, 3, 3) and s["layers.19.weight"] == (1, 64, 3, 3)


def test_srvgg_keys():
    s = shapes(SRVGGNetCompact(num_feat=8, num_conv=2, upscale=4))
    assert list(s) == [
        "body.0.weight",
        "body.0.bias",
        "body.1.weight",
        "body.2.weight",
        "body.2.bias",
        "body.3.weight",
        "body.4.weight",
        "body.4.bias",
        "body.5.weight",
        "body.6.weight",
        "body.6.bias",
    ]
    assert s["body.1.weight"] == (8,) and s["body.6.weight"] == (48, 8, 3, 3)
    assert "body.1.weight" not in shapes(SRVGGNetCompact(num_feat=8, num_conv=2, act_type="relu"))


def test_vgg_discriminator_keys():
    s128 = shapes(on_meta(VGGStyleDiscriminator, 3, 64))
    s256 = shapes(on_meta(VGGStyleDiscriminator, 3, 64, input_size=256))
    assert s128["conv0_0.bias"] == (64,) and "conv0_1.bias" not in s128
    assert s128["conv4_1.weight"] == (512, 512, 4, 4) and s128["linear1.weight"] == (100, 8192)
    assert "conv5_0.weight" not in s128 and s256["bn5_1.weight"] == (512,)
    assert list(s256)[-4:] == ["linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"]


def test_unet_discriminator_spectral_norm_keys():
    s = shapes(UNetDiscriminatorSN(3, num_feat=8))
    for i in range(1, 9):
        assert {f"conv{i}.weight_orig", f"conv{i}.weight_u", f"conv{i}.weight_v"} <= set(s)
        assert f"conv{i}.bias" not in s and f"conv{i}.weight" not in s
    assert s["conv3.weight_orig"] == (64, 32, 4, 4) and s["conv3.weight_u"] == (64,)
    assert s["conv0.bias"] == (8,) and s["conv9.weight"] == (1, 8, 3, 3)


# --- forward shapes (small widths) ---------------------------------------------------------------------------
def _out_shape(model: nn.Module, *shape: int) -> tuple[int, ...]:
    with torch.no_grad():
        return tuple(model.eval()(torch.rand(*shape)).shape)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_generator_shapes(scale):
    torch.manual_seed(0)
    nets = [
        EDSR(3, 3, num_feat=8, num_block=1, upscale=scale),
        RCAN(3, 3, num_feat=8, num_group=1, num_block=1, squeeze_factor=4, upscale=scale),
        RDN(3, 3, num_feat=8, num_block=2, num_conv=2, num_grow_ch=4, upscale=scale),
        MSRResNet(num_feat=8, num_block=1, upscale=scale),
        SRResNet(num_feat=8, num_block=1, upscale=scale),
        SRVGGNetCompact(num_feat=8, num_conv=1, upscale=scale),
    ]
    for net in nets:
        assert _out_shape(net, 2, 3, 7, 5) == (2, 3, 7 * scale, 5 * scale), type(net).__name__


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_rrdbnet_shapes(scale):
    net = RRDBNet(3, 3, scale=scale, num_feat=8, num_block=1, num_grow_ch=4)
    assert _out_shape(net, 2, 3, 8, 12) == (2, 3, 8 * scale, 12 * scale)


def test_vdsr_shape_and_single_channel_edsr():
    assert _out_shape(VDSR(num_feat=8, num_layers=3), 2, 1, 9, 7) == (2, 1, 9, 7)
    assert _out_shape(VDSR(3, 3, num_feat=8, num_layers=3), 1, 3, 9, 7) == (1, 3, 9, 7)
    assert _out_shape(EDSR(1, 1, num_feat=8, num_block=1, upscale=2, rgb_mean=(0.5,)), 1, 1, 4, 4) == (1, 1, 8, 8)


def test_srresnet_x8():
    assert _out_shape(SRResNet(num_feat=8, num_block=1, upscale=8), 1, 3, 3, 2) == (1, 3, 24, 16)


@pytest.mark.parametrize("size,in_ch", [(128, 3), (256, 1)])
def test_vgg_discriminator_output(size, in_ch):
    net = VGGStyleDiscriminator(in_ch, 4, input_size=size)
    assert _out_shape(net, 2, in_ch, size, size) == (2, 1)
    with pytest.raises(ValueError, match="expects"):
        net(torch.rand(1, in_ch, 64, 64))


@pytest.mark.parametrize("skip", [True, False])
def test_unet_discriminator_output(skip):
    net = UNetDiscriminatorSN(3, num_feat=8, skip_connection=skip)
    assert _out_shape(net, 2, 3, 24, 32) == (2, 1, 24, 32)
    net.train()
    assert net(torch.rand(1, 3, 16, 16)).shape == (1, 1, 16, 16)


# --- bad arguments -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build",
    [
        lambda: EDSR(3, 3, upscale=5),
        lambda: EDSR(3, 3, upscale=6),
        lambda: EDSR(1, 1),  # a 3-value mean for 1-channel images
        lambda: RCAN(3, 3, upscale=7),
        lambda: RCAN(3, 3, num_feat=8, squeeze_factor=16),
        lambda: RDN(upscale=8),
        lambda: RRDBNet(3, 3, scale=3),
        lambda: RRDBNet(3, 3, scale=8),
        lambda: MSRResNet(upscale=8),
        lambda: MSRResNet(num_in_ch=3, num_out_ch=1),
        lambda: SRResNet(upscale=5),
        lambda: SRVGGNetCompact(act_type="gelu"),
        lambda: SRVGGNetCompact(upscale=0),
        lambda: VDSR(num_layers=1),
        lambda: VGGStyleDiscriminator(3, 64, input_size=200),
        lambda: VGGStyleDiscriminator(3, 64, input_size=16),
    ],
)
def test_bad_args_raise_value_error(build):
    with pytest.raises(ValueError):
        build()


@pytest.mark.parametrize("size", [96, 192])
def test_vgg_discriminator_other_patch_sizes(size):
    """SRGAN's 96 px and ESRGAN-Pro's 192 px patches: same keys, only linear1's input width changes."""
    net = VGGStyleDiscriminator(3, 8, input_size=size)
    ref = VGGStyleDiscriminator(3, 8, input_size=128)
    assert list(net.state_dict()) == list(ref.state_dict())
    assert net.linear1.in_features == 8 * 8 * (size // 32) ** 2
    assert net(torch.rand(2, 3, size, size)).shape == (2, 1)


def test_bad_input_sizes_raise_value_error():
    with pytest.raises(ValueError, match="divisible"):
        RRDBNet(3, 3, scale=2, num_feat=8, num_block=1, num_grow_ch=4)(torch.rand(1, 3, 7, 8))
    with pytest.raises(ValueError, match="divisible"):
        UNetDiscriminatorSN(3, num_feat=4)(torch.rand(1, 3, 12, 16))


def test_srvgg_lrelu_alias_equals_leakyrelu():
    torch.manual_seed(0)
    a = SRVGGNetCompact(num_feat=8, num_conv=1, act_type="leakyrelu")
    b = SRVGGNetCompact(num_feat=8, num_conv=1, act_type="lrelu")
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 5, 5)
    assert torch.equal(a(x), b(x))


# --- initialisation ------------------------------------------------------------------------------------------
def _std_ratio(conv: nn.Conv2d, gain_scale: float) -> float:
    fan_in = conv.weight[0].numel()
    return conv.weight.std().item() / (gain_scale * math.sqrt(2.0 / fan_in))


def test_initialisation_scales():
    torch.manual_seed(0)
    vdsr = VDSR()
    assert abs(_std_ratio(vdsr.layers[1], 1.0) - 1) < 0.03  # He et al.
    assert all(torch.count_nonzero(c.bias) == 0 for c in vdsr.layers)
    msr = MSRResNet()
    assert abs(_std_ratio(msr.body[0].conv1, 0.1) - 1) < 0.03  # BasicSR's x0.1 Kaiming
    assert abs(_std_ratio(msr.conv_hr, 0.1) - 1) < 0.03
    rrdb = RRDBNet(3, 3, num_block=1)
    assert abs(_std_ratio(rrdb.body[0].rdb2.conv5, 0.1) - 1) < 0.03
    edsr = EDSR(3, 3)  # PyTorch default (Kaiming-uniform, a=sqrt(5)): std = 1/sqrt(3 fan_in)
    assert abs(edsr.body[0].conv1.weight.std().item() * math.sqrt(3 * 576) - 1) < 0.03


# --- invariants for the networks without a BasicSR reference ------------------------------------------------
def test_vdsr_is_residual():
    torch.manual_seed(0)
    net = VDSR(num_feat=8, num_layers=4)
    with torch.no_grad():
        x = torch.rand(1, 1, 6, 6)
        f = net.layers[3](F.relu(net.layers[2](F.relu(net.layers[1](F.relu(net.layers[0](x)))))))
        assert torch.allclose(net(x), x + f, atol=1e-6)
        net.layers[-1].weight.zero_()
        net.layers[-1].bias.zero_()
        assert torch.equal(net(x), x)


def _rdn_functional(sd: dict[str, torch.Tensor], x: torch.Tensor, D: int, C: int, r: int) -> torch.Tensor:
    """RDN from the paper's equations, reading the official key names (img_range 1)."""

    def conv(name: str, t: torch.Tensor) -> torch.Tensor:
        w = sd[f"{name}.weight"]
        return F.conv2d(t, w, sd[f"{name}.bias"], padding=w.shape[-1] // 2)

    f_m1 = conv("SFENet1", x)  # F_{-1}
    f = conv("SFENet2", f_m1)  # F_0
    outs = []
    for d in range(D):
        feats = [f]
        for c in range(C):
            feats.append(F.relu(conv(f"RDBs.{d}.convs.{c}.conv.0", torch.cat(feats, 1))))
        f = f + conv(f"RDBs.{d}.LFF", torch.cat(feats, 1))  # local residual learning
        outs.append(f)
    f_df = conv("GFF.1", conv("GFF.0", torch.cat(outs, 1))) + f_m1  # global feature fusion + global residual
    if r == 4:
        up = F.pixel_shuffle(conv("UPNet.2", F.pixel_shuffle(conv("UPNet.0", f_df), 2)), 2)
        return conv("UPNet.4", up)
    return conv("UPNet.2", F.pixel_shuffle(conv("UPNet.0", f_df), r))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_rdn_matches_paper_equations(scale):
    torch.manual_seed(scale)
    net = RDN(3, 3, num_feat=8, num_block=3, num_conv=3, num_grow_ch=4, upscale=scale, img_range=1.0).eval()
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        expected = _rdn_functional(net.state_dict(), x, D=3, C=3, r=scale)
        assert torch.allclose(net(x), expected, rtol=1e-5, atol=1e-6)


def test_rdn_img_range_scales_input_and_output():
    torch.manual_seed(0)
    a = RDN(3, 3, num_feat=8, num_block=2, num_conv=2, num_grow_ch=4, upscale=2)  # 255, the default
    b = RDN(3, 3, num_feat=8, num_block=2, num_conv=2, num_grow_ch=4, upscale=2, img_range=1.0)
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 5, 5)
    with torch.no_grad():
        assert torch.allclose(a(x), b(x * 255.0) / 255.0, rtol=1e-5, atol=1e-6)


def test_srresnet_matches_paper_structure():
    """Eval-mode SRResNet equals conv/BN/PReLU composed by hand from the state dict (random BN statistics)."""
    torch.manual_seed(0)
    net = SRResNet(num_feat=8, num_block=2, upscale=4)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
            elif isinstance(m, nn.PReLU):
                m.weight.uniform_(0.05, 0.5)
    net.eval()
    sd = net.state_dict()

    def conv(name, t, bias=True):
        w = sd[f"{name}.weight"]
        return F.conv2d(t, w, sd[f"{name}.bias"] if bias else None, padding=w.shape[-1] // 2)

    def bn(name, t):
        return F.batch_norm(
            t,
            sd[f"{name}.running_mean"],
            sd[f"{name}.running_var"],
            sd[f"{name}.weight"],
            sd[f"{name}.bias"],
            training=False,
            eps=1e-5,
        )

    def prelu(name, t):
        return F.prelu(t, sd[f"{name}.weight"])

    x = torch.rand(1, 3, 5, 6)
    with torch.no_grad():
        feat = prelu("act_first", conv("conv_first", x))
        h = feat
        for i in range(2):
            h = h + bn(
                f"body.{i}.bn2",
                conv(
                    f"body.{i}.conv2",
                    prelu(f"body.{i}.act", bn(f"body.{i}.bn1", conv(f"body.{i}.conv1", h, bias=False))),
                    bias=False,
                ),
            )
        h = bn("bn_after_body", conv("conv_after_body", h, bias=False)) + feat
        for k in (0, 3):
            h = prelu(f"upsample.{k + 2}", F.pixel_shuffle(conv(f"upsample.{k}", h), 2))
        expected = conv("conv_last", h)
        assert torch.allclose(net(x), expected, rtol=1e-5, atol=1e-6)
        assert expected.shape == (1, 3, 20, 24)


# --- SRGAN's own discriminator (Ledig et al. 2017, Fig. 4) ------------------------------------------------------
def test_srgan_discriminator_parameter_count_at_96px():
    # by hand: conv0 3*64*9+64; conv1..7 (no bias) 64*64, 64*128, 128*128, 128*256, 256*256, 256*512, 512*512 (x9);
    # BN 2*(64+128+128+256+256+512+512); dense1 (512*6*6)*1024+1024; dense2 1024+1
    convs = 3 * 64 * 9 + 64 + 9 * (64 * 64 + 64 * 128 + 128 * 128 + 128 * 256 + 256 * 256 + 256 * 512 + 512 * 512)
    bns = 2 * (64 + 128 + 128 + 256 + 256 + 512 + 512)
    dense = 512 * 6 * 6 * 1024 + 1024 + 1024 + 1
    net = on_meta(SRGANDiscriminator, 3, 64, input_size=96)
    assert sum(p.numel() for p in net.parameters()) == convs + bns + dense == 23_563_649


def test_srgan_discriminator_layout():
    s = shapes(on_meta(SRGANDiscriminator, 3, 64, input_size=96))
    filters = [s[f"conv{k}.weight"][0] for k in range(8)]
    assert filters == [64, 64, 128, 128, 256, 256, 512, 512]
    assert all(s[f"conv{k}.weight"][2:] == (3, 3) for k in range(8))
    assert "conv0.bias" in s and "bn0.weight" not in s and all(f"bn{k}.weight" in s for k in range(1, 8))
    assert s["dense1.weight"] == (1024, 18432) and s["dense2.weight"] == (1, 1024)


@pytest.mark.parametrize("size", [16, 96, 128, 192])
def test_srgan_discriminator_any_multiple_of_16(size):
    torch.manual_seed(0)
    net = SRGANDiscriminator(3, 4, input_size=size)
    assert net.dense1.in_features == 32 * (size // 16) ** 2
    # stride 2 on every second convolution: four halvings
    feats = []
    net.conv7.register_forward_hook(lambda m, i, o: feats.append(o.shape))
    assert _out_shape(net, 2, 3, size, size) == (2, 1)
    assert feats[0][-2:] == (size // 16, size // 16)
    with pytest.raises(ValueError, match="multiple of 16"):
        SRGANDiscriminator(3, 4, input_size=100)
    with pytest.raises(ValueError, match=f"{size}x{size}"):
        net(torch.rand(1, 3, size + 16, size + 16))
