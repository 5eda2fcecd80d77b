"""SRForward: input modes (LR / bicubic), colour modes (RGB / Y with bicubic chroma), channels_last."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from src.archs import ESPCN
from src.degradations import imresize
from src.imaging.colorspace import rgb_to_ycbcr
from src.methods.sr_forward import SRForward


class BicubicNet(nn.Module):
    """A 'network' that is MATLAB-bicubic upsampling of its (1-channel) input; records what it was fed."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return imresize(x, float(self.scale))


def _lr(seed: int = 0, n: int = 2, h: int = 9, w: int = 11) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_input_identity_net_is_imresize(scale):
    lr = _lr(scale)
    out = SRForward(nn.Identity(), scale, input="bicubic")(lr)
    assert out.shape == (2, 3, 9 * scale, 11 * scale)
    assert torch.equal(out, imresize(lr, float(scale)))


def test_lr_input_identity_net_is_the_lr():
    lr = _lr(1)
    assert torch.equal(SRForward(nn.Identity(), 3, input="lr")(lr), lr)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_y_mode_recombines_luma_and_bicubic_chroma(scale):
    lr = _lr(10 + scale)
    net = BicubicNet(scale)
    out = SRForward(net, scale, input="lr", color="y")(lr)
    # the net saw only the LR Y channel
    assert len(net.seen) == 1
    assert net.seen[0].shape == (2, 1, 9, 11)
    assert torch.allclose(net.seen[0], rgb_to_ycbcr(lr)[:, :1], atol=1e-7)
    # Y from the net + CbCr from bicubic, back to RGB == bicubic RGB (imresize is linear, weights sum to 1)
    expected = imresize(lr, float(scale))
    assert out.shape == expected.shape == (2, 3, 9 * scale, 11 * scale)
    assert torch.allclose(out, expected, atol=1e-5, rtol=0)


def test_y_mode_uses_net_luma():
    """A net that adds a constant to Y changes only luma: the output's Y is bicubic Y + delta, CbCr unchanged."""
    scale, delta = 2, 0.05

    class Shift(BicubicNet):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) + delta

    lr = _lr(5)
    out = SRForward(Shift(scale), scale, input="lr", color="y")(lr)
    ref = rgb_to_ycbcr(imresize(lr, float(scale)))
    got = rgb_to_ycbcr(out)
    assert torch.allclose(got[:, :1], ref[:, :1] + delta, atol=1e-5)
    assert torch.allclose(got[:, 1:], ref[:, 1:], atol=1e-5)


def test_y_mode_with_bicubic_input_and_identity():
    scale = 3
    lr = _lr(6)
    out = SRForward(nn.Identity(), scale, input="bicubic", color="y")(lr)
    assert torch.allclose(out, imresize(lr, float(scale)), atol=1e-5, rtol=0)


def test_predict_y():
    scale = 2
    lr = _lr(7)
    fwd = SRForward(BicubicNet(scale), scale, input="lr", color="y")
    y = fwd.predict_y(lr)
    assert y.shape == (2, 1, 18, 22)
    assert torch.allclose(y, rgb_to_ycbcr(imresize(lr, 2.0))[:, :1], atol=1e-5)


def test_channels_last_matches_contiguous():
    torch.manual_seed(0)
    net = ESPCN(3, 3, upscale=3)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net_cl = ESPCN(3, 3, upscale=3)
    net_cl.load_state_dict(state)
    lr = _lr(8, n=2, h=10, w=13)
    with torch.no_grad():
        ref = SRForward(net, 3, channels_last=False)(lr)
        fwd_cl = SRForward(net_cl, 3, channels_last=True)
        assert fwd_cl.net.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        out = fwd_cl(lr)
    assert out.shape == ref.shape == (2, 3, 30, 39)
    assert torch.allclose(out, ref, atol=1e-6, rtol=0)


def test_parameters_registered_under_net():
    fwd = SRForward(ESPCN(1, 1, upscale=2), 2, color="y")
    assert all(name.startswith("net.") for name in fwd.state_dict())
    assert sum(p.numel() for p in fwd.parameters()) == sum(p.numel() for p in fwd.net.parameters()) > 0


def test_rejects_non_batched_input():
    with pytest.raises(ValueError, match="N, C, h, w"):
        SRForward(nn.Identity(), 2)(torch.rand(3, 4, 4))
