"""StyleGAN2 generator: rosinality's key layout and outputs, and its operations re-derived independently."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from src.archs.stylegan2 import ModulatedConv2d, StyleGAN2Generator, Upsample, rosinality_state_dict, upfirdn2d

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "stylegan2_reference.pt"


def _reference_module():
    path = ROOT / "experiments" / "pulse" / "make_stylegan2_reference.py"
    spec = importlib.util.spec_from_file_location("make_sg2_ref", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference():
    return torch.load(REFERENCE, weights_only=True)


def _rosinality_layout(size: int, style_dim: int, n_mlp: int, mult: int) -> list[tuple[str, tuple[int, ...]]]:
    """rosinality's Generator key layout written out from its source (channels: 512 up to 32 px, then 256·m …)."""
    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * mult, 128: 128 * mult, 256: 64 * mult, 512: 32 * mult,
             1024: 16 * mult}
    keys = []
    for i in range(1, n_mlp + 1):
        keys += [(f"style.{i}.weight", (style_dim, style_dim)), (f"style.{i}.bias", (style_dim,))]
    keys.append(("input.input", (1, 512, 4, 4)))

    def styled(prefix, cin, cout, up):
        out = [(f"{prefix}.conv.weight", (1, cout, cin, 3, 3)), (f"{prefix}.conv.modulation.weight", (cin, style_dim)),
               (f"{prefix}.conv.modulation.bias", (cin,))]
        out += [(f"{prefix}.conv.blur.kernel", (4, 4))] if up else []
        return out + [(f"{prefix}.noise.weight", (1,)), (f"{prefix}.activate.bias", (cout,))]

    def rgb(prefix, cin, up):
        out = [(f"{prefix}.bias", (1, 3, 1, 1))] + ([(f"{prefix}.upsample.kernel", (4, 4))] if up else [])
        return out + [(f"{prefix}.conv.weight", (1, 3, cin, 1, 1)),
                      (f"{prefix}.conv.modulation.weight", (cin, style_dim)),
                      (f"{prefix}.conv.modulation.bias", (cin,))]

    keys += styled("conv1", 512, 512, False) + rgb("to_rgb1", 512, False)
    log_size = int(math.log2(size))
    cin, convs, rgbs = 512, [], []
    for j, i in enumerate(range(3, log_size + 1)):
        cout = table[2**i]
        convs += styled(f"convs.{2 * j}", cin, cout, True) + styled(f"convs.{2 * j + 1}", cout, cout, False)
        rgbs += rgb(f"to_rgbs.{j}", cout, True)
        cin = cout
    noises = [(f"noises.noise_{i}", (1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2)))
              for i in range(2 * (log_size - 2) + 1)]
    return keys + convs + rgbs + noises


@pytest.mark.parametrize("size,mult", [(16, 2), (64, 1), (128, 2)])
def test_state_dict_has_rosinality_layout(size, mult):
    g = StyleGAN2Generator(size, style_dim=8, n_mlp=2, channel_multiplier=mult)
    ours = {k: tuple(v.shape) for k, v in g.state_dict().items()}
    assert ours == dict(_rosinality_layout(size, 8, 2, mult))
    assert g.num_latents == 2 * int(math.log2(size)) - 2


def test_outputs_match_rosinality_code(reference):
    """Weights drawn into rosinality's layout give rosinality's own outputs (max |Δ| < 1e-4 on values ~1)."""
    cfg = reference["config"]
    g = StyleGAN2Generator(cfg["size"], cfg["style_dim"], cfg["n_mlp"], cfg["channel_multiplier"]).eval()
    assert {k: tuple(v.shape) for k, v in g.state_dict().items()} == {k: tuple(s) for k, s in reference["layout"]}
    state = _reference_module().draw_state_dict([(k, tuple(s)) for k, s in reference["layout"]], reference["seed"])
    state.update(reference["kernels"])
    g.load_state_dict(state, strict=True)
    for k, v in reference["kernels"].items():
        assert torch.equal(g.state_dict()[k], v)
    with torch.no_grad():
        assert torch.allclose(g.mapping(reference["z"]), reference["w"], atol=1e-5, rtol=0)
        image = g(reference["latents"], reference["noise"])
        assert (image - reference["image"]).abs().max() < 1e-4 and reference["image"].std() > 0.5
        stored = g(reference["w"])  # one w for every layer, the stored noise buffers
        assert (stored - reference["image_w_stored_noise"]).abs().max() < 1e-4


def test_checkpoint_round_trip(tmp_path, reference):
    """A rosinality-style checkpoint file ({g_ema, latent_avg}) saved and loaded gives identical outputs."""
    cfg = reference["config"]
    g = StyleGAN2Generator(cfg["size"], cfg["style_dim"], cfg["n_mlp"], cfg["channel_multiplier"]).eval()
    path = tmp_path / "ckpt.pt"
    torch.save({"g_ema": g.state_dict(), "latent_avg": torch.zeros(cfg["style_dim"])}, path)
    g2 = StyleGAN2Generator(cfg["size"], cfg["style_dim"], cfg["n_mlp"], cfg["channel_multiplier"]).eval()
    g2.load_state_dict(rosinality_state_dict(torch.load(path, weights_only=True)), strict=True)
    latents = torch.randn(1, g.num_latents, cfg["style_dim"])
    noise = [torch.randn(s) for s in g.noise_shapes()]
    with torch.no_grad():
        assert torch.equal(g(latents, noise), g2(latents, noise))
    with pytest.raises(ValueError, match="not a StyleGAN2 generator checkpoint"):
        rosinality_state_dict({"params": {}})


def _fir_by_loops(x: torch.Tensor, kernel: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Direct FIR convolution y[i, j] = Σ k[a, b] · xp[i + K-1-a, j + K-1-b] on the zero-padded input."""
    xp = F.pad(x, [before, after, before, after])
    kk = kernel.shape[0]
    h, w = xp.shape[-2] - kk + 1, xp.shape[-1] - kk + 1
    out = torch.zeros(*x.shape[:2], h, w, dtype=x.dtype)
    for a in range(kk):
        for b in range(kk):
            out += kernel[a, b] * xp[..., kk - 1 - a: kk - 1 - a + h, kk - 1 - b: kk - 1 - b + w]
    return out


def test_upfirdn2d_against_direct_sums():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    k = torch.rand(4, 4, dtype=torch.float64)  # not symmetric: the flip matters
    assert torch.allclose(upfirdn2d(x, k, pad=(2, 1)), _fir_by_loops(x, k, 2, 1))
    stuffed = torch.zeros(2, 3, 10, 12, dtype=torch.float64)
    stuffed[..., ::2, ::2] = x
    assert torch.allclose(upfirdn2d(x, k, up=2, pad=(2, 1)), _fir_by_loops(stuffed, k, 2, 1))
    assert torch.allclose(upfirdn2d(x, k, down=2, pad=(1, 1)), _fir_by_loops(x, k, 1, 1)[..., ::2, ::2])
    # x2 upsampling with the [1, 3, 3, 1] kernel keeps a constant image constant (gain 4 after zero stuffing)
    up = Upsample((1, 3, 3, 1))
    y = up(torch.full((1, 1, 6, 6), 0.7))
    assert y.shape[-2:] == (12, 12) and torch.allclose(y[..., 2:-2, 2:-2], torch.tensor(0.7))


@pytest.mark.parametrize("upsample", [False, True])
def test_modulated_conv_against_per_sample_convolution(upsample):
    """The batched grouped convolution equals, per sample, a plain convolution with the modulated weight; with
    demodulation every output channel's weight has unit norm; the upsampling path equals zero stuffing + the
    flipped kernel + the blur."""
    torch.manual_seed(1)
    conv = ModulatedConv2d(4, 5, 3, style_dim=6, upsample=upsample).double()
    x, w = torch.randn(3, 4, 7, 7, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)
    out = conv(x, w)
    for i in range(3):
        s = F.linear(w[i], conv.modulation.weight * conv.modulation.scale, conv.modulation.bias)
        weight = conv.weight[0] * conv.scale * s.view(1, 4, 1, 1)
        weight = weight / weight.flatten(1).norm(dim=1).view(5, 1, 1, 1)  # demodulation (eps 1e-8 negligible)
        if upsample:
            stuffed = torch.zeros(1, 4, 13, 13, dtype=torch.float64)
            stuffed[..., ::2, ::2] = x[i]
            ref = F.conv2d(stuffed, weight.flip(-1, -2), padding=2)  # = transposed conv, stride 2
            ref = _fir_by_loops(ref, conv.blur.kernel.double(), 1, 1)
        else:
            ref = F.conv2d(x[i: i + 1], weight, padding=1)
        assert ref.shape == out[i: i + 1].shape
        assert torch.allclose(out[i: i + 1], ref, atol=1e-10)


def test_generator_interface_shapes():
    g = StyleGAN2Generator(32, style_dim=16, n_mlp=1, channel_max=16)
    assert (g.latent_dim, g.num_latents, g.resolution, g.channels) == (16, 8, (32, 32), 3)
    assert [s[-1] for s in g.noise_shapes()] == [4, 8, 8, 16, 16, 32, 32]
    with torch.no_grad():
        y = g(torch.randn(2, 16))
    assert y.shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"latents: expected \(N, 8, 16\)"):
        g(torch.randn(2, 3, 16))
