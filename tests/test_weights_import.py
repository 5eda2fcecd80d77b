"""Weight import/export (src/weights/checkpoints.py, src/export.py): every supported file layout round-trips into our
networks, mismatches give readable errors, and the official VDSR .mat reproduces the published Set5 number.

Each layout test takes a tiny network of ours, renames its keys into the foreign layout with an inverse mapping
written here (independently of the loader's rules), saves it in that format and loads it back into a fresh
network: the outputs must be identical.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from src.archs import EDSR, ESPCN, RCAN, VDSR, RRDBNet
from src.methods import LIGHTNING_NET_PREFIXES as NET
from src.methods.loading import build_eval_model
from src.weights.checkpoints import (
    WeightsError,
    export_basicsr,
    load_into,
    load_weights,
    read_weights,
)

REPO = Path(__file__).resolve().parents[1]
DIV2K_MEAN = torch.tensor([0.4488, 0.4371, 0.4040])
State = dict[str, torch.Tensor]


# ---- tiny networks ------------------------------------------------------------------------------------------
def tiny_edsr(upscale: int = 4) -> nn.Module:
    return EDSR(3, 3, num_feat=8, num_block=2, upscale=upscale)


def tiny_rcan() -> nn.Module:
    return RCAN(3, 3, num_feat=8, num_group=2, num_block=2, squeeze_factor=4, upscale=2)


def tiny_rrdb() -> nn.Module:
    return RRDBNet(3, 3, scale=4, num_feat=8, num_block=2, num_grow_ch=4)


def made(factory: Callable[[], nn.Module], seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = factory()
    with torch.no_grad():  # make every tensor distinctive (also the zero-initialised biases)
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return net.eval()


def assert_same_outputs(a: nn.Module, b: nn.Module, channels: int = 3, size: int = 8) -> None:
    x = torch.rand(1, channels, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def state_of(net: nn.Module) -> State:
    return {k: v.clone() for k, v in net.state_dict().items()}


# ---- inverse mappings: our (BasicSR) keys -> foreign layouts ------------------------------------------------
def mean_shift(rgb_range: float = 255.0, mean: torch.Tensor = DIV2K_MEAN) -> State:
    eye = torch.eye(3).view(3, 3, 1, 1)
    return {
        "sub_mean.weight": eye.clone(), "sub_mean.bias": -rgb_range * mean,
        "add_mean.weight": eye.clone(), "add_mean.bias": rgb_range * mean,
    }


def _edsr_pytorch_head_tail(parts: list[str]) -> str | None:
    """EDSR-PyTorch's names for the first conv and the upsampling tail (the same in its EDSR and RCAN)."""
    if parts[0] == "conv_first":
        return "head.0." + parts[-1]
    if parts[0] == "upsample":
        return f"tail.0.{parts[1]}.{parts[-1]}"
    if parts[0] == "conv_last":
        return "tail.1." + parts[-1]
    return None


def to_official_edsr(state: State, num_block: int, rgb_range: float = 255.0) -> State:
    out = mean_shift(rgb_range)
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "body":  # body.i.conv1 / conv2 -> body.i.body.0 / 2
            new = f"body.{parts[1]}.body.{0 if parts[2] == 'conv1' else 2}.{parts[-1]}"
        elif parts[0] == "conv_after_body":
            new = f"body.{num_block}.{parts[-1]}"
        elif (new := _edsr_pytorch_head_tail(parts)) is None:
            raise AssertionError(key)
        out[new] = value
    return out


def to_official_rcan(state: State, num_group: int, num_block: int) -> State:
    out = mean_shift()
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "body" and parts[2] == "residual_group":
            g, b, idx = parts[1], parts[3], parts[5]
            prefix = f"body.{g}.body.{b}.body"
            if idx in ("0", "2"):
                new = f"{prefix}.{idx}.{parts[-1]}"
            else:  # rcab.3.attention.{1,3} -> body.3.conv_du.{0,2}
                new = f"{prefix}.3.conv_du.{int(parts[7]) - 1}.{parts[-1]}"
        elif parts[0] == "body":  # body.g.conv -> body.g.body.{num_block}
            new = f"body.{parts[1]}.body.{num_block}.{parts[-1]}"
        elif parts[0] == "conv_after_body":
            new = f"body.{num_group}.{parts[-1]}"
        elif (new := _edsr_pytorch_head_tail(parts)) is None:
            raise AssertionError(key)
        out[new] = value
    return out


ESRGAN_NAMES = {"conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2", "conv_hr": "HRconv"}


def to_original_esrgan(state: State) -> State:
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "body":  # body.i.rdbK.convJ -> RRDB_trunk.i.RDBK.convJ
            new = f"RRDB_trunk.{parts[1]}.RDB{parts[2][3:]}.{parts[3]}.{parts[4]}"
        else:
            new = f"{ESRGAN_NAMES.get(parts[0], parts[0])}.{parts[1]}"
        out[new] = value
    return out


def to_sequential_esrgan(state: State, num_block: int) -> State:
    index = {"conv_first": "model.0", "conv_body": f"model.1.sub.{num_block}", "conv_up1": "model.3",
             "conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"}
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "body":
            new = f"model.1.sub.{parts[1]}.RDB{parts[2][3:]}.{parts[3]}.0.{parts[4]}"
        else:
            new = f"{index[parts[0]]}.{parts[1]}"
        out[new] = value
    return out


# ---- every layout round-trips -------------------------------------------------------------------------------
def _save(obj, path: Path) -> Path:
    torch.save(obj, path)
    return path


CASES: dict[str, tuple[Callable[[], nn.Module], Callable[[State, Path], Path], str]] = {
    # name: (network factory, write the file, expected layout description fragment)
    "bare": (tiny_edsr, lambda s, d: _save(s, d / "bare.pth"), "basicsr"),
    "basicsr_params": (tiny_edsr, lambda s, d: _save({"params": s}, d / "p.pth"), "params"),
    "module_prefix": (tiny_edsr, lambda s, d: _save({f"module.{k}": v for k, v in s.items()}, d / "dp.pth"), "basicsr"),
    "lightning": (
        tiny_edsr,
        lambda s, d: _save(
            {"state_dict": {f"sr.net.{k}": v for k, v in s.items()} | {"criterion.w": torch.ones(1)},
             "hyper_parameters": {"name": "edsr", "scale": 4}, "pytorch-lightning_version": "2.5.0"},
            d / "run.ckpt",
        ),
        "lightning",
    ),
    "official_edsr_x4": (tiny_edsr, lambda s, d: _save(to_official_edsr(s, 2), d / "edsr_x4.pt"), "official EDSR"),
    "official_edsr_x3": (
        lambda: tiny_edsr(3), lambda s, d: _save(to_official_edsr(s, 2), d / "edsr_x3.pt"), "official EDSR"
    ),
    "official_edsr_dataparallel": (
        tiny_edsr,
        lambda s, d: _save({f"module.{k}": v for k, v in to_official_edsr(s, 2).items()}, d / "edsr_dp.pt"),
        "official EDSR",
    ),
    "official_rcan": (tiny_rcan, lambda s, d: _save(to_official_rcan(s, 2, 2), d / "RCAN_BIX2.pt"), "official RCAN"),
    "original_esrgan": (tiny_rrdb, lambda s, d: _save(to_original_esrgan(s), d / "RRDB_ESRGAN_x4.pth"), "RRDB_trunk"),
    "sequential_esrgan": (
        tiny_rrdb, lambda s, d: _save(to_sequential_esrgan(s, 2), d / "RRDB_old.pth"), "sequential"
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_layout_round_trip(case, tmp_path):
    factory, write, layout = CASES[case]
    source = made(factory, seed=1)
    path = write(state_of(source), tmp_path)
    target = made(factory, seed=2)
    state, description = read_weights(path, target, NET)
    assert layout in description
    target.load_state_dict(state, strict=True)
    assert_same_outputs(source, target)
    assert set(load_weights(path, net_prefixes=NET)) == set(source.state_dict())  # no network needed to convert


def test_params_ema_is_preferred(tmp_path):
    ema, plain = made(tiny_edsr, 1), made(tiny_edsr, 3)
    path = _save({"params": state_of(plain), "params_ema": state_of(ema)}, tmp_path / "net_g.pth")
    target = made(tiny_edsr, 2)
    assert "params" in load_into(target, path)
    assert_same_outputs(ema, target)


def test_lightning_ema_copy_is_preferred(tmp_path):
    net, ema = made(tiny_edsr, 1), made(tiny_edsr, 3)
    sd = {f"sr.net.{k}": v for k, v in state_of(net).items()} | {f"ema_sr.net.{k}": v for k, v in state_of(ema).items()}
    path = _save({"state_dict": sd, "hyper_parameters": {}}, tmp_path / "ema.ckpt")
    target = made(tiny_edsr, 2)
    load_into(target, path, NET)
    assert_same_outputs(ema, target)


def test_safetensors_round_trip(tmp_path):
    from safetensors.torch import save_file

    source = made(tiny_rcan, 1)
    save_file(state_of(source), str(tmp_path / "rcan.safetensors"))
    target = made(tiny_rcan, 2)
    load_into(target, tmp_path / "rcan.safetensors")
    assert_same_outputs(source, target)


# ---- errors -------------------------------------------------------------------------------------------------
def test_wrong_network_lists_missing_and_unexpected_keys(tmp_path):
    path = _save({"params": state_of(made(tiny_rrdb, 1))}, tmp_path / "rrdb.pth")
    with pytest.raises(WeightsError) as info:
        load_weights(path, tiny_edsr())
    msg = str(info.value)
    assert "rrdb.pth" in msg and "EDSR" in msg
    assert "missing keys" in msg and "body.0.conv1.weight" in msg
    assert "unexpected keys" in msg and "body.0.rdb1.conv1.weight" in msg
    assert "more)" in msg  # long lists are cut


def test_shape_mismatch_is_reported(tmp_path):
    path = _save(state_of(made(tiny_edsr, 1)), tmp_path / "edsr8.pth")
    with pytest.raises(WeightsError, match=r"shape mismatches.*conv_first\.weight: file \(8, 3, 3, 3\) vs network "
                                           r"\(16, 3, 3, 3\)"):
        load_weights(path, EDSR(3, 3, num_feat=16, num_block=2, upscale=4))


def test_unknown_layout_says_so(tmp_path):
    path = _save({"encoder.stem.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match=r"(?s)other\.pth.*unexpected keys \(1\): encoder\.stem\.weight.*"
                                           r"no other known layout"):
        load_weights(path, tiny_edsr())


def test_unknown_container_is_an_error(tmp_path):
    path = _save({"epoch": 3, "optimizer": {"lr": 0.1}}, tmp_path / "odd.pth")
    with pytest.raises(WeightsError, match=r"odd\.pth: not a known weights container"):
        load_weights(path)


def test_mean_shift_must_match_the_network(tmp_path):
    state = to_official_edsr(state_of(made(tiny_edsr, 1)), 2, rgb_range=1.0)  # trained on [0, 1] images
    path = _save(state, tmp_path / "edsr_range1.pt")
    with pytest.raises(WeightsError, match=r"sub_mean.*img_range=255"):
        load_weights(path, tiny_edsr())
    target = EDSR(3, 3, num_feat=8, num_block=2, upscale=4, img_range=1.0)
    load_into(target, path)  # a network built for that range accepts it


def test_pickled_code_is_refused(tmp_path):
    path = _save({"params": state_of(made(tiny_edsr, 1)), "args": argparse.Namespace(scale=4)}, tmp_path / "p.pth")
    with pytest.raises(WeightsError, match="refusing to unpickle"):
        load_weights(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_weights("nope.pth")


# ---- export -------------------------------------------------------------------------------------------------
def test_export_round_trip(tmp_path):
    net, ema = made(tiny_rrdb, 1), made(tiny_rrdb, 3)
    path = export_basicsr(net.state_dict(), tmp_path / "out" / "rrdb.pth")
    saved = torch.load(path, weights_only=True)
    assert set(saved) == {"params", "params_ema"}
    assert all(torch.equal(saved["params"][k], saved["params_ema"][k]) for k in saved["params"])
    target = made(tiny_rrdb, 2)
    load_into(target, path)
    assert_same_outputs(net, target)

    export_basicsr(net.state_dict(), tmp_path / "with_ema.pth", ema_state_dict=ema.state_dict())
    load_into(target, tmp_path / "with_ema.pth")
    assert_same_outputs(ema, target)

    export_basicsr(net.state_dict(), tmp_path / "rrdb.safetensors")
    load_into(target, tmp_path / "rrdb.safetensors")
    assert_same_outputs(net, target)


ESPCN_ARCH = {"_target_": "src.archs.ESPCN", "num_in_ch": 1, "num_out_ch": 1, "upscale": 2, "num_feat": 8}
ESPCN_HPARAMS = {"name": "espcn", "scale": 2, "arch": ESPCN_ARCH, "input": "lr", "color": "y"}


def _lightning_ckpt(path: Path, net: nn.Module) -> Path:
    """What src.train writes, reduced to what the loaders read."""
    state = {f"sr.net.{k}": v for k, v in net.state_dict().items()}
    return _save({"state_dict": state, "hyper_parameters": ESPCN_HPARAMS, "epoch": 0}, path)


def test_export_cli(tmp_path):
    net = made(lambda: ESPCN(1, 1, upscale=2, num_feat=8), 1)
    ckpt = _lightning_ckpt(tmp_path / "best.ckpt", net)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "src.export", f"ckpt={ckpt}", f"output={tmp_path / 'espcn_x2.pth'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    saved = torch.load(tmp_path / "espcn_x2.pth", weights_only=True)
    assert set(saved) == {"params", "params_ema", "srsuite"}
    assert saved["srsuite"] == {**ESPCN_HPARAMS, "arch": ESPCN_ARCH}  # what model=auto cannot read from shapes
    assert "Y-channel network: no other client reads it" in proc.stdout
    assert set(saved["params"]) == set(net.state_dict()) == set(saved["params_ema"])
    assert torch.equal(saved["params_ema"]["conv1.weight"], net.conv1.weight)


def test_export_cli_converts_official_layouts_and_rejects_bad_args(tmp_path, capsys):
    from src.config.command_line import run_in_process

    def main(argv):
        return run_in_process("src.export", argv)

    source = made(tiny_edsr, 1)
    official = _save(to_official_edsr(state_of(source), 2), tmp_path / "edsr_x4.pt")
    assert main([f"ckpt={official}", f"output={tmp_path / 'edsr_basicsr.pth'}"]) == 0
    saved = torch.load(tmp_path / "edsr_basicsr.pth", weights_only=True)
    assert set(saved["params"]) == set(source.state_dict())
    assert main([f"ckpt={tmp_path / 'missing.ckpt'}", f"output={tmp_path / 'x.pth'}"]) == 2
    assert main([f"checkpoint={official}"]) == 2
    assert "unknown config key 'checkpoint'" in capsys.readouterr().err


# ---- model.weights: training initialisation and evaluation --------------------------------------------------

def test_supervised_module_initialises_from_weights(tmp_path):
    from src.methods import SupervisedSR

    net = made(lambda: ESPCN(1, 1, upscale=2, num_feat=8), 1)
    path = export_basicsr(net.state_dict(), tmp_path / "espcn.pth")
    module = SupervisedSR(name="espcn", arch=ESPCN_ARCH, scale=2, color="y", loss="mse", weights=str(path))
    assert_same_outputs(net, module.net, channels=1)
    assert "weights" not in module.hparams
    with pytest.raises(WeightsError, match=r"(?s)espcn\.pth.*shape mismatches"):
        SupervisedSR(name="espcn", arch=ESPCN_ARCH | {"num_feat": 16}, scale=2, color="y", weights=str(path))


def _eval_cfg(*overrides: str):
    from hydra import compose, initialize_config_dir

    import src.config.validation  # noqa: F401  (resolvers)

    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        return compose("evaluate", overrides=list(overrides))


def test_build_eval_model_from_weights_file(tmp_path):
    net = made(lambda: ESPCN(1, 1, upscale=2, num_feat=8), 1)
    path = export_basicsr(net.state_dict(), tmp_path / "espcn.safetensors")
    cfg = _eval_cfg("model=espcn", "scale=2", "model.arch.num_feat=8", f"model.weights={path}")
    model = build_eval_model(cfg.model, 2, None)
    assert_same_outputs(net, model.net, channels=1)
    with pytest.raises(ValueError, match="either ckpt_path"):
        build_eval_model(cfg.model, 2, str(path))
    cfg = _eval_cfg("model=espcn", "scale=2", "model.arch.num_feat=8")
    with pytest.raises(ValueError, match="model.weights=<weights file>"):
        build_eval_model(cfg.model, 2, None)
    ckpt = _lightning_ckpt(tmp_path / "best.ckpt", net)  # our checkpoint: the network comes from its hparams
    assert_same_outputs(net, build_eval_model(cfg.model, 2, str(ckpt)).net, channels=1)
    ckpt = export_basicsr(net.state_dict(), tmp_path / "plain.pth")  # a plain file as ckpt_path: from the config
    cfg = _eval_cfg("model=espcn", "scale=2", "model.arch.num_feat=8")
    assert_same_outputs(net, build_eval_model(cfg.model, 2, str(ckpt)).net, channels=1)


# ---- official VDSR (MatConvNet .mat) ------------------------------------------------------------------------
def _savemat_model(path: Path, weights: list[np.ndarray], biases: list[np.ndarray]) -> Path:
    from scipy.io import savemat

    w = np.empty((1, len(weights)), dtype=object)
    b = np.empty((1, len(biases)), dtype=object)
    for i, (wi, bi) in enumerate(zip(weights, biases)):
        w[0, i], b[0, i] = wi, bi
    savemat(str(path), {"model": {"weight": w, "bias": b}})
    return path


def _vl_nnconv(x: np.ndarray, f: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MatConvNet's vl_nnconv with 'Pad', 1 written from its definition: y(i,j,k) = b(k) +
    sum_{u,v,d} f(u,v,d,k) x(i+u-1, j+v-1, d) (a correlation; arrays H x W x C)."""
    f = f.reshape(*f.shape[:3], -1)
    h, w = x.shape[:2]
    xp = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    y = np.zeros((h, w, f.shape[3])) + b.reshape(-1)
    for u in range(3):
        for v in range(3):
            y += np.einsum("ijd,dk->ijk", xp[u : u + h, v : v + w], f[u, v])
    return y


def test_matconvnet_mat_matches_vl_nnconv(tmp_path):
    """A synthetic 3-layer VDSR .mat (last weight saved with MATLAB's dropped trailing singleton) gives the
    same output in torch as the MatConvNet forward pass written out in numpy."""
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((3, 3, 1, 4)), rng.standard_normal((3, 3, 4, 4)), rng.standard_normal((3, 3, 4))]
    bs = [rng.standard_normal((4, 1)), rng.standard_normal((4, 1)), rng.standard_normal((1, 1))]
    ws, bs = [w.astype(np.float32) for w in ws], [b.astype(np.float32) for b in bs]
    path = _savemat_model(tmp_path / "vdsr_tiny.mat", ws, bs)
    net = VDSR(1, 1, num_feat=4, num_layers=3)
    assert "matconvnet" in load_into(net, path)

    x = rng.random((7, 9, 1))
    ref = x
    for i, (w, b) in enumerate(zip(ws, bs)):
        ref = _vl_nnconv(ref, w.astype(np.float64), b.astype(np.float64))
        if i < 2:
            ref = np.maximum(ref, 0)
    ref = ref + x
    with torch.no_grad():
        out = net(torch.from_numpy(x).permute(2, 0, 1)[None].float())[0].permute(1, 2, 0).double().numpy()
    assert np.abs(out - ref).max() < 1e-4


def test_official_vdsr_mat_loads_strictly(shared_root):
    path = shared_root / "weights" / "VDSR_Official.mat"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    net = VDSR(1, 1)
    description = load_into(net, path)
    assert "matconvnet" in description
    assert sum(p.numel() for p in net.parameters()) == 665_921
    with pytest.raises(WeightsError, match="layers.20.weight"):
        load_weights(path, VDSR(1, 1, num_layers=21))


def test_official_vdsr_reproduces_published_set5_x2(shared_root, benchmarks_root):
    """Kim et al. report 37.53 dB on Set5 x2; these weights give about 37.48 through the MATLAB protocol
    (the original code downscaled Y only): within 0.1 dB. Whole Set5 at x2, about 5-8 s on one core."""
    from src.evaluation.benchmark import load_benchmark_set, score_set

    path = shared_root / "weights" / "VDSR_Official.mat"
    if not path.is_file():
        pytest.skip("VDSR_Official.mat is missing from ../shared/weights")
    torch.set_num_threads(1)
    cfg = _eval_cfg("model=vdsr", "scale=2", f"model.weights={path}", "channels_last=true")
    model = build_eval_model(cfg.model, 2, None)
    images = load_benchmark_set(benchmarks_root, "Set5", 2)
    scores, _ = score_set(model, images, "vdsr", "Set5", 2)
    psnr = sum(s.psnr_y for s in scores) / len(scores)
    ssim = sum(s.ssim_y for s in scores) / len(scores)
    assert len(scores) == 5
    assert psnr >= 37.43, psnr
    assert ssim >= 0.957, ssim


def test_weight_io_imports_no_method_and_methods_name_their_prefix(tmp_path):
    """The I/O floor (reading files, containers, layouts, detection, writing, ONNX/TorchScript) imports nothing of
    src.methods; the Lightning prefix that reading a method's checkpoint needs is the method's own."""
    from src.methods import AdversarialSR, SupervisedSR

    code = ("import sys; import src.weights.checkpoints, src.weights.detection, src.weights.writing, "
            "src.weights.deploy; print(sorted(m for m in sys.modules if m.startswith('src.methods')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    method = SupervisedSR(name="espcn", arch=ESPCN_ARCH, scale=2, color="y")
    net_keys = {k for k in method.state_dict() if k.startswith(method.net_prefix)}
    assert {k[len(method.net_prefix):] for k in net_keys} == set(method.net.state_dict())
    assert (SupervisedSR.net_prefix,) == NET and AdversarialSR.net_prefix == SupervisedSR.net_prefix
    # without the prefix a method's checkpoint is a plain {'state_dict': …} wrapper whose keys fit no network
    path = _lightning_ckpt(tmp_path / "espcn.ckpt", method.net)
    with pytest.raises(WeightsError, match=r"unexpected keys \(6\): sr\.net\.conv1\.weight"):
        read_weights(path, method.net)
    assert set(load_weights(path, method.net, NET)) == set(method.net.state_dict())
