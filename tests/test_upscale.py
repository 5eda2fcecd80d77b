"""Upscaling user images: tiling (equivalence, seams, odd sizes), self-ensemble, back-projection, image formats
(gray / RGBA / 16-bit), precision fallback, no-overwrite, and the ``python -m src.upscale`` CLI end to end."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from src.archs import ESPCN, RRDBNet
from src.degradations import imresize
from src.imaging.colorspace import rgb_to_luma_bt601
from src.inference import back_project, pad_image, self_ensemble, size_multiple, tile_starts, tiled_forward
from src.inference.image_files import OutputExistsError, plan_outputs, read_input, resolve_inputs, write_output
from src.inference.tiling import blend_weights
from src.inference.upscale import ModelRunner, Upscaler, UpscaleSettings, upscale
from src.methods import BicubicSR
from tests.cli_helpers import run_cli

REPO = Path(__file__).resolve().parents[1]
_run = functools.partial(run_cli, "src.upscale", timeout=180)  # the CLI as a user runs it
TOL = 1 / 255


def _seeded(module: nn.Module, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    for p in module.parameters():
        nn.init.normal_(p, std=0.2)
    return module.eval()


def _smooth_image(h: int, w: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """A natural-looking test image: smooth gradients plus some texture, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, channels, max(2, h // 6), max(2, w // 6), generator=g)
    base = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    return (0.8 * base + 0.2 * torch.rand(1, channels, h, w, generator=g)).clamp(0, 1)


# ---- tile layout and weights ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("length", "tile", "overlap", "mod"), [(100, 32, 8, 1), (97, 16, 4, 1), (48, 16, 8, 4),
                                                                 (64, 64, 8, 1), (40, 64, 8, 2), (1000, 512, 32, 4)])
def test_tile_starts_cover_on_grid(length, tile, overlap, mod):
    starts = tile_starts(length, tile, overlap, mod)
    size = min(tile, length)
    assert starts[0] == 0 and starts[-1] + size == length
    assert all(s % mod == 0 for s in starts)
    assert all(b - a <= size - overlap for a, b in zip(starts, starts[1:]))  # neighbours share >= overlap px
    assert starts == sorted(set(starts))


def test_blend_weights_cross_fade():
    w = blend_weights(32, 16, start_interior=True, end_interior=True, scale=2)
    assert w.shape == (64,)
    assert torch.all(w[:8] == 0) and torch.all(w[-8:] == 0)  # overlap // 4 = 4 LR px of context, x2
    assert torch.all(w[24:40] == 1)
    left, right = blend_weights(32, 16, True, False, 2), blend_weights(32, 16, False, True, 2)
    # two tiles overlapping by exactly 16 LR px: their weights over the shared 32 SR px sum to 1
    assert torch.allclose(right[-32:] + left[:32], torch.ones(32, dtype=torch.float64))
    assert torch.all(torch.diff(left[:24]) >= 0)  # monotone rise
    assert torch.equal(blend_weights(10, 8, False, False), torch.ones(10, dtype=torch.float64))


def test_size_multiple_and_padding():
    assert size_multiple(RRDBNet(3, 3, scale=1, num_feat=4, num_block=1, num_grow_ch=4)) == 4
    assert size_multiple(RRDBNet(3, 3, scale=2, num_feat=4, num_block=1, num_grow_ch=4)) == 2
    assert size_multiple(ESPCN(3, 3, upscale=4)) == 1
    x = torch.arange(2 * 7 * 9, dtype=torch.float32).view(1, 2, 7, 9)
    padded, (top, left) = pad_image(x, pre_pad=2, mod=4)
    assert padded.shape[-2:] == (12, 16) and (top, left) == (2, 2)
    assert torch.equal(padded[..., 2:9, 2:11], x)
    assert torch.equal(padded[..., 0, 2:11], x[..., 2, :])  # reflected (edge not repeated)
    tiny, _ = pad_image(torch.rand(1, 3, 1, 2), pre_pad=0, mod=4)  # too small to reflect: replicated
    assert tiny.shape[-2:] == (4, 4)


# ---- tiled inference ---------------------------------------------------------------------------------------------
def _espcn(scale: int) -> nn.Module:
    return _seeded(ESPCN(3, 3, upscale=scale, num_feat=16))


def _rrdb(scale: int) -> nn.Module:
    torch.manual_seed(scale)  # PyTorch's default init (std 0.2 everywhere would make this deep net chaotic)
    return RRDBNet(3, 3, scale=scale, num_feat=8, num_block=1, num_grow_ch=8).eval()


@pytest.mark.parametrize(("make", "scale", "size", "tile", "overlap"), [
    (_espcn, 2, (45, 37), 24, 16),
    (_espcn, 3, (31, 52), 24, 16),  # overlap // 4 = 4 LR px of context = ESPCN's receptive-field radius
    (lambda s: BicubicSR(scale=s), 4, (29, 33), 12, 8),
    (_rrdb, 1, (71, 66), 48, 32),
    (_rrdb, 2, (53, 47), 40, 32),
])
def test_tiled_matches_whole_image(make, scale, size, tile, overlap):
    net = make(scale)
    mod = size_multiple(net)
    x = _smooth_image(*size)
    with torch.no_grad():
        whole = tiled_forward(net, x, scale, tile=0, mod=mod)
        tiled = tiled_forward(net, x, scale, tile=tile, overlap=overlap, mod=mod)
        if mod == 1:
            assert torch.allclose(whole, net(x), atol=1e-6)
    assert tiled.shape == (1, 3, size[0] * scale, size[1] * scale)
    assert (tiled - whole).abs().max() <= TOL


def test_tiled_pre_pad_odd_sizes():
    net = _rrdb(1)  # needs multiples of 4
    for h, w in [(1, 1), (1, 7), (13, 1), (17, 23), (6, 9)]:
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            whole = tiled_forward(net, x, 1, tile=0, pre_pad=2, mod=4)
            tiled = tiled_forward(net, x, 1, tile=8, overlap=4, pre_pad=2, mod=4)
        assert whole.shape == tiled.shape == (1, 3, h, w)
    bicubic = BicubicSR(scale=3)  # pre-padding only changes the border (reflect vs MATLAB's symmetric padding)
    x = torch.rand(1, 3, 17, 23)
    padded = tiled_forward(bicubic, x, 3, tile=0, pre_pad=3)
    assert padded.shape == (1, 3, 51, 69) and not torch.allclose(padded, bicubic(x), atol=1e-3)
    assert torch.allclose(padded[..., 6:-6, 6:-6], bicubic(x)[..., 6:-6, 6:-6], atol=1e-5)


class _Upsample(nn.Module):
    """A fixed smooth "network": bilinear upsampling (+ an offset proportional to the tile's mean, which makes
    every tile's output differ: a hard tile border would show as a step)."""

    def __init__(self, scale: int, offset: float = 0.0) -> None:
        super().__init__()
        self.scale, self.offset = scale, offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return up + self.offset * x.mean(dim=(-2, -1), keepdim=True)


def _max_step(img: torch.Tensor) -> float:
    return max(img.diff(dim=-1).abs().max().item(), img.diff(dim=-2).abs().max().item())


def test_blending_has_no_seams():
    h, w, s = 64, 80, 2
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    x = torch.stack([xx, yy, (xx + yy) / 2]).unsqueeze(0) ** 2  # smooth, tile means all differ
    smooth = _Upsample(s)
    assert torch.allclose(tiled_forward(smooth, x, s, tile=24, overlap=8), smooth(x), atol=1e-6)

    offset = _Upsample(s, offset=0.5)
    base_step = _max_step(smooth(x))
    hard = tiled_forward(offset, x, s, tile=24, overlap=0)
    assert _max_step(hard) > base_step + 0.02  # abutting tiles: a visible step at the borders
    overlap = 16
    blended = tiled_forward(offset, x, s, tile=24, overlap=overlap)
    # per output pixel the cross-fade moves by at most (offset difference) x (max ramp slope)
    ramp_px = (overlap - 2 * (overlap // 4)) * s
    tile_means = [x[..., a : a + 24, b : b + 24].mean().item() for a in range(0, h - 23) for b in range(0, w - 23)]
    max_jump = 0.5 * (max(tile_means) - min(tile_means)) * math.pi / (2 * ramp_px)
    assert _max_step(blended) <= base_step + max_jump + 1e-6
    assert _max_step(blended) < _max_step(hard) / 3


# ---- self-ensemble ----------------------------------------------------------------------------------------------
def _d4_symmetric(n: int) -> torch.Tensor:
    """An n x n image invariant under all flips and quarter turns (a function of the distance to the centre)."""
    c = (n - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(n) - c, torch.arange(n) - c, indexing="ij")
    r2 = (xx**2 + yy**2) / c**2
    return torch.stack([torch.cos(3 * r2), torch.exp(-2 * r2), r2.clamp(max=1)]).unsqueeze(0) * 0.5 + 0.25


class _IsotropicNet(nn.Module):
    """Commutes with flips and rotations: bicubic upsampling followed by a D4-symmetric 3x3 filter."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        k = torch.tensor([[0.05, 0.1, 0.05], [0.1, 0.4, 0.1], [0.05, 0.1, 0.05]])
        self.register_buffer("kernel", k.expand(3, 1, 3, 3).clone())
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(imresize(x, float(self.scale)), self.kernel, padding=1, groups=3)


def test_ensemble_invariance_on_symmetric_input():
    x = _d4_symmetric(15)
    for t in (lambda a: a.flip(-1), lambda a: a.flip(-2), lambda a: a.transpose(-1, -2)):
        assert torch.allclose(t(x), x)
    equivariant = _IsotropicNet(2)
    assert torch.allclose(self_ensemble(equivariant, x), equivariant(x), atol=1e-6)
    y = _smooth_image(12, 17)  # non-square, non-symmetric input: still the same for an equivariant network
    assert torch.allclose(self_ensemble(equivariant, y), equivariant(y), atol=1e-6)
    bicubic = BicubicSR(scale=3)
    assert torch.allclose(self_ensemble(bicubic, y), bicubic(y), atol=1e-5)

    net = _espcn(2)  # random weights: not equivariant
    with torch.no_grad():
        plain, ens = net(x), self_ensemble(net, x)
    assert (plain - ens).abs().max() > 0.01
    assert torch.allclose(ens, ens.flip(-1), atol=1e-5) and torch.allclose(ens, ens.transpose(-1, -2), atol=1e-5)


def test_ensemble_inside_tiles_matches_whole():
    net, x = _espcn(2), _smooth_image(30, 41)
    with torch.no_grad():
        whole = self_ensemble(net, x)
        tiled = tiled_forward(lambda t: self_ensemble(net, t), x, 2, tile=24, overlap=16)
    assert (tiled - whole).abs().max() <= 1e-5


# ---- back-projection ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_back_projection_converges(scale):
    hr = _smooth_image(12 * scale, 10 * scale)
    lr = imresize(hr, 1 / scale)
    for sr in (imresize(lr, float(scale)), (imresize(lr, float(scale)) + 0.05 * torch.randn_like(hr))):
        history: list[float] = []
        out = back_project(sr, lr, scale, iterations=15, history=history)
        assert len(history) == 16 and out.shape == sr.shape
        assert all(b < a for a, b in zip(history, history[1:])), history
        assert history[-1] < 2e-4 and history[-1] < history[0] / 20
        assert float((imresize(out, 1 / scale) - lr).abs().max()) < 2e-3
    assert torch.equal(back_project(sr, lr, scale, iterations=0), sr)
    with pytest.raises(ValueError, match="not x"):
        back_project(sr[..., :-1], lr, scale)


# ---- image formats through the Upscaler ---------------------------------------------------------------------------
def _bicubic_upscaler(scale: int = 2, **kw) -> Upscaler:
    runner = ModelRunner(BicubicSR(scale=scale), torch.device("cpu"))
    return Upscaler(runner, UpscaleSettings(scale=scale, tile=kw.pop("tile", 12), tile_overlap=8, **kw))


def test_formats_gray_rgba_16bit_roundtrip(tmp_path):
    up = _bicubic_upscaler(2)
    gray = _smooth_image(11, 9, channels=1)[0]
    rgb = _smooth_image(11, 9, seed=1)[0]
    alpha = _smooth_image(11, 9, channels=1, seed=2)[0]
    cases = {"gray8": (gray, None, 8), "rgb16": (rgb, None, 16), "gray16": (gray, None, 16),
             "rgba8": (rgb, alpha, 8), "rgba16": (rgb, alpha, 16), "la8": (gray, alpha, 8), "la16": (gray, alpha, 16)}
    for name, (pixels, a, bits) in cases.items():
        write_output(tmp_path / f"{name}.png", pixels, a, bits)
        img = read_input(tmp_path / f"{name}.png")
        assert img.bit_depth == bits and img.pixels.shape[0] == pixels.shape[0], name
        assert (img.alpha is None) == (a is None), name
        step = 1 / (2**bits - 1)
        assert (img.pixels - pixels).abs().max() <= step / 2 + 1e-6, name
        sr, sr_alpha = up(img.pixels, img.alpha)
        assert sr.shape == (pixels.shape[0], 22, 18), name
        expected = imresize(img.pixels.expand(3, -1, -1).unsqueeze(0), 2.0).clamp(0, 1)[0]
        expected = rgb_to_luma_bt601(expected) if pixels.shape[0] == 1 else expected
        assert torch.allclose(sr, expected, atol=1e-5), name
        if a is not None:
            assert torch.allclose(sr_alpha, imresize(img.alpha[None], 2.0)[0].clamp(0, 1), atol=1e-6), name
        write_output(tmp_path / f"{name}_out.png", sr, sr_alpha, img.bit_depth)
        back = read_input(tmp_path / f"{name}_out.png")
        assert back.bit_depth == bits and back.pixels.shape == sr.shape and (back.alpha is None) == (a is None)
        assert (back.pixels - sr).abs().max() <= step / 2 + 1e-6, name
    modes = {n: Image.open(tmp_path / f"{n}_out.png").mode for n in ("gray8", "gray16", "rgba8", "la8")}
    assert modes == {"gray8": "L", "gray16": "I;16", "rgba8": "RGBA", "la8": "LA"}


def test_palette_with_transparency_keeps_alpha(tmp_path):
    img = Image.new("P", (5, 4))
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.putpixel((1, 1), 1)
    img.info["transparency"] = 0
    img.save(tmp_path / "p.png", transparency=0)
    loaded = read_input(tmp_path / "p.png")
    assert loaded.pixels.shape == (3, 4, 5) and loaded.alpha is not None and loaded.alpha.sum() == 1


def test_back_projection_and_ensemble_in_upscaler():
    lr = _smooth_image(10, 12)[0]
    plain, _ = _bicubic_upscaler(3)(lr)
    bp, _ = _bicubic_upscaler(3, postprocess="back_projection", bp_iterations=10)(lr)
    err = lambda sr: float((imresize(sr[None], 1 / 3)[0] - lr).abs().mean())  # noqa: E731
    assert err(bp) < err(plain) / 5
    ens, _ = _bicubic_upscaler(3, ensemble=True)(lr)
    assert torch.allclose(ens, plain, atol=1e-5)


# ---- precision fallback --------------------------------------------------------------------------------------------
class _HalfOverflow(nn.Module):
    """Fine in fp32, NaN as soon as it runs in reduced precision (as some GAN generators do in fp16)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y = y * float("nan") if y.dtype != torch.float32 else y
        return F.interpolate(y, scale_factor=2, mode="nearest")


def test_half_precision_falls_back_to_fp32():
    net = _seeded(_HalfOverflow())
    runner = ModelRunner(net, torch.device("cpu"), torch.bfloat16)  # CPU autocast: bf16
    x = torch.rand(1, 3, 8, 8)
    with pytest.warns(RuntimeWarning, match="NaN/inf in bf16"), torch.no_grad():
        out = tiled_forward(runner, x, 2, tile=4, overlap=2)
    assert torch.isfinite(out).all()
    with torch.no_grad():
        assert torch.allclose(out, net(x), atol=1e-6)
    assert runner.fallbacks == runner.calls == 9  # 3 x 3 tiles, each rerun
    ok = ModelRunner(BicubicSR(scale=2), torch.device("cpu"), torch.bfloat16)
    with torch.no_grad():
        assert (ok(x) - BicubicSR(scale=2)(x)).abs().max() < 0.02 and ok.fallbacks == 0


# ---- inputs, outputs, no overwrite -------------------------------------------------------------------------------
def _png(path: Path, h: int = 9, w: int = 7, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(0)
    shape = (h, w) if mode == "L" else (h, w, len(mode))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path


def test_inputs_and_no_overwrite(tmp_path):
    a, b = _png(tmp_path / "in" / "a.png"), _png(tmp_path / "in" / "b.jpg")
    (tmp_path / "in" / "notes.txt").write_text("x")
    assert resolve_inputs(str(tmp_path / "in")) == [a, b]
    assert resolve_inputs(str(tmp_path / "in" / "*.png")) == [a]
    assert resolve_inputs([str(a), str(tmp_path / "in")]) == [a, b]
    with pytest.raises(FileNotFoundError, match="no such file"):
        resolve_inputs(str(tmp_path / "missing.png"))
    with pytest.raises(FileNotFoundError, match="matches no image"):
        resolve_inputs(str(tmp_path / "*.webp"))

    out = tmp_path / "out"
    assert plan_outputs([a, b], out, "_x4", overwrite=False) == [out / "a_x4.png", out / "b_x4.png"]
    _png(out / "b_x4.png")
    with pytest.raises(OutputExistsError, match=r"b_x4\.png already exists.*overwrite=true"):
        plan_outputs([a, b], out, "_x4", overwrite=False)
    assert plan_outputs([a, b], out, "_x4", overwrite=True)[1] == out / "b_x4.png"
    with pytest.raises(ValueError, match="both be written"):
        plan_outputs([a, _png(tmp_path / "in2" / "a.png")], out, "", overwrite=True)
    with pytest.raises(ValueError, match="input file itself"):
        plan_outputs([a], tmp_path / "in", "", overwrite=True)


def _cfg(*overrides: str):
    from hydra import compose, initialize_config_dir

    import src.config.validation  # noqa: F401  (resolvers)

    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        return compose("upscale", overrides=list(overrides))


def test_upscale_in_process(tmp_path):
    from src.config.validation import ConfigError

    src = _png(tmp_path / "photo.png", 13, 10)
    out = tmp_path / "out"
    cfg = _cfg(f"input={src}", f"output={out}", "model=bicubic", "progress=false", "tile=12", "tile_overlap=8")
    (written,) = upscale(cfg)
    assert written == out / "photo_x4.png"
    sr = read_input(written).pixels
    expected = imresize(read_input(src).pixels[None], 4.0).clamp(0, 1)[0]
    assert sr.shape == (3, 52, 40) and (sr - expected).abs().max() <= 0.5 / 255 + 1e-6
    before = written.read_bytes()
    with pytest.raises(OutputExistsError, match="photo_x4.png"):
        upscale(_cfg(f"input={src}", f"output={out}", "progress=false", "scale=4"))
    assert written.read_bytes() == before
    for bad, match in [("tile_overlap=64", "smaller than tile"), ("postprocess=sharpen", "back_projection"),
                       ("precision=fp8", "fp32"), ("+tile_size=3", "tile"), ("tile=-1", "integer >= 0")]:
        with pytest.raises(ConfigError, match=match):
            upscale(_cfg(f"input={src}", f"output={out}", "tile=64", bad))
    with pytest.raises(ConfigError, match="input=… is required"):
        upscale(_cfg(f"output={out}"))
    with pytest.warns(RuntimeWarning, match="fp16 is for GPUs"):  # on the CPU: fp32, same result
        (again,) = upscale(_cfg(f"input={src}", f"output={out}", "suffix=_fp16", "precision=fp16", "device=cpu",
                                "progress=false", "tile=12", "tile_overlap=8"))
    assert torch.equal(read_input(again).pixels, sr)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            upscale(_cfg(f"input={src}", f"output={out}", "suffix=_gpu", "device=cuda"))


def test_scale_from_lightning_checkpoint(tmp_path):
    net = _seeded(ESPCN(3, 3, upscale=2, num_feat=8))
    ckpt = tmp_path / "best.ckpt"
    arch = {"_target_": "src.archs.ESPCN", "num_in_ch": 3, "num_out_ch": 3, "upscale": 2, "num_feat": 8}
    torch.save({"state_dict": {f"sr.net.{k}": v for k, v in net.state_dict().items()},
                "hyper_parameters": {"name": "espcn", "scale": 2, "arch": arch, "input": "lr", "color": "rgb"}}, ckpt)
    src = _png(tmp_path / "p.png", 6, 5)
    (written,) = upscale(_cfg(f"input={src}", f"output={tmp_path}", "model=espcn", f"model.weights={ckpt}",
                              "progress=false"))
    assert written.name == "p_x2.png" and read_input(written).pixels.shape == (3, 12, 10)


# ---- the CLI as a user runs it ---------------------------------------------------------------------------------------
def test_cli_bicubic_formats(tmp_path):
    folder = tmp_path / "photos"
    _png(folder / "rgb.png", 9, 7)
    _png(folder / "gray.png", 5, 8, mode="L")
    _png(folder / "rgba.png", 6, 6, mode="RGBA")
    write_output(folder / "deep.png", _smooth_image(7, 5)[0], None, 16)
    out = tmp_path / "out"
    proc = _run(f"input={folder}", f"output={out}", "model=bicubic", "scale=3", "tile=4", "tile_overlap=2",
                run_dir=tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    modes = {p.name: (Image.open(p).mode, Image.open(p).size) for p in sorted(out.glob("*.png"))}
    assert modes == {"deep_x3.png": ("RGB", (15, 21)), "gray_x3.png": ("L", (24, 15)),  # PIL shows 16-bit RGB as RGB
                     "rgb_x3.png": ("RGB", (21, 27)), "rgba_x3.png": ("RGBA", (18, 18))}
    assert read_input(out / "deep_x3.png").bit_depth == 16
    assert read_input(out / "deep_x3.png").pixels.shape == (3, 21, 15)
    proc = _run(f"input={folder}/*.png", f"output={out}", "model=bicubic", "scale=3", run_dir=tmp_path / "run2")
    assert proc.returncode == 2 and "already exists" in proc.stderr and "overwrite=true" in proc.stderr


def test_cli_espcn_weights_file(tmp_path):
    from src.weights.checkpoints import export_basicsr

    net = _seeded(ESPCN(3, 3, upscale=2, num_feat=8))
    weights = export_basicsr(net.state_dict(), tmp_path / "espcn_x2.pth")
    src = _png(tmp_path / "odd.png", 23, 29)
    out = tmp_path / "out"
    proc = _run(f"input={src}", f"output={out}", "model=espcn", "model.color=rgb", f"model.weights={weights}",
                "model.arch.num_feat=8", "scale=2", "tile=20", "tile_overlap=16", "ensemble=true",
                "postprocess=back_projection", "bp_iterations=3", "suffix=_sr", run_dir=tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lr = read_input(src).pixels[None]
    with torch.no_grad():
        expected = back_project(self_ensemble(net, lr), lr, 2, iterations=3).clamp(0, 1)[0]
    got = read_input(out / "odd_sr.png")
    assert got.pixels.shape == (3, 46, 58)
    assert (got.pixels - expected).abs().max() <= 0.5 / 255 + 1e-5  # 4 tiles, each with 4 px of context
