"""A trained checkpoint of every GAN method (and Real-ESRNet) works under its own model name in evaluate, upscale
and interpolate: the EMA generator is what runs, with the outputs of the network itself."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image

import src.config.validation  # noqa: F401  (resolvers)
from src.evaluation.run import evaluate
from src.inference.image_files import read_input
from src.inference.upscale import upscale
from src.methods.loading import build_eval_model
from src.weights.checkpoints import load_weights
from src.weights.interpolation import run_interpolation

REPO = Path(__file__).resolve().parents[1]
RRDB_TINY = ["model.arch.num_feat=8", "model.arch.num_block=1", "model.arch.num_grow_ch=4"]
TINY = {
    "realesrnet": RRDB_TINY,
    "realesrgan": [*RRDB_TINY, "model.discriminator.num_feat=4"],
    "rrdb_gan": [*RRDB_TINY, "model.discriminator.num_feat=4"],
    "esrgan_pro": [*RRDB_TINY, "model.discriminator.num_feat=4"],
    "srgan": ["model.arch.num_feat=8", "model.arch.num_block=1", "model.discriminator.num_feat=4"],
}


def _compose(config: str, *overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        return compose(config, overrides=list(overrides))


def _trained_checkpoints(model: str, folder: Path) -> list[tuple[Path, torch.nn.Module]]:
    """Two checkpoints as ``src.train`` writes them (the method's state dict and hyperparameters: generator,
    EMA copy, discriminator), each with random generator weights and a different EMA copy; returns them with
    their EMA generators. The content loss is plain L1 (``loss=l1``): building VGG19 would only cost time."""
    cfg = _compose("train", f"model={model}", "loss=l1", "logger=[]", *TINY[model])
    method = instantiate(cfg.model, _recursive_=False)
    assert (model == "realesrnet") != any(k.startswith("net_d.") for k in method.state_dict())  # D saved too
    out = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        with torch.no_grad():
            for p in method.sr.net.parameters():
                p.normal_(0, 0.05)
            if method.sr_ema is not None:
                for p in method.sr_ema.net.parameters():
                    p.normal_(0, 0.05)
        path = folder / f"ckpt{seed}.ckpt"
        torch.save({"state_dict": method.state_dict(), "hyper_parameters": dict(method.hparams), "epoch": 1}, path)
        generator = method.sr_ema.net if method.sr_ema is not None else method.sr.net
        out.append((path, copy.deepcopy(generator).eval()))
    return out


@pytest.mark.parametrize("model", sorted(TINY))
def test_gan_checkpoint_in_evaluate_upscale_interpolate(model, tmp_path):
    (ckpt, generator), (ckpt_b, generator_b) = _trained_checkpoints(model, tmp_path)
    assert "degradation" in _compose("train", f"model={model}")  # training still composes its degradation

    # evaluate: model=<name> ckpt_path=… and model.weights=… both compose and run the (EMA) generator
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):  # a two-image benchmark set, LR generated
        (tmp_path / "sets" / "Tiny" / "HR").mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((24, 20, 3)) * 255).astype(np.uint8)).save(tmp_path / "sets/Tiny/HR" / name)
    cfg = _compose("evaluate", f"model={model}", f"ckpt_path={ckpt}", f"benchmarks.root={tmp_path / 'sets'}",
                   "benchmarks.sets=[Tiny]", "benchmarks.scales=[4]", "metrics.names=[psnr_y]", "device=cpu")
    (row,) = evaluate(cfg, tmp_path / "eval")
    assert (row.method, row.set, row.scale, row.num_images) == (model + ("+bp" if model == "esrgan_pro" else ""),
                                                                 "Tiny", 4, 2)
    assert 0 < row.values["psnr_y"] < 60
    cfg = _compose("evaluate", f"model={model}", f"model.weights={ckpt}")
    lr = torch.rand(1, 3, 8, 12)
    with torch.no_grad():
        assert torch.equal(build_eval_model(cfg.model, 4, None).net(lr), generator(lr))

    # upscale: the written image is the generator's output, rounded to 8 bits
    img = (np.random.default_rng(0).random((66, 68, 3)) * 255).round().astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "in.png")
    cfg = _compose("upscale", f"model={model}", f"model.weights={ckpt}", f"input={tmp_path / 'in.png'}",
                   f"output={tmp_path / 'up'}", "progress=false", "tile=0", "postprocess=none")
    (written,) = upscale(cfg)
    with torch.no_grad():
        expected = generator(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255).clamp(0, 1)[0]
    assert read_input(written).pixels.shape == (3, 264, 272)
    assert (read_input(written).pixels - expected).abs().max() <= 0.5 / 255 + 1e-6

    # interpolate: θ = (1 − α)·θ_a + α·θ_b of the two EMA generators
    cfg = _compose("interpolate", f"model={model}", *TINY[model], f"a={ckpt}", f"b={ckpt_b}", "alpha=0.25",
                   f"output={tmp_path / 'interp.pth'}")
    (path,) = run_interpolation(cfg, tmp_path / "interp")
    mixed = load_weights(path)
    a, b = generator.state_dict(), generator_b.state_dict()
    assert set(mixed) == set(a)
    for key, value in mixed.items():
        if value.is_floating_point():
            assert torch.allclose(value, 0.75 * a[key] + 0.25 * b[key], atol=1e-6), key
