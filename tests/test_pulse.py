"""PULSE: the latent search reaches the downscaling eps on a generator with a known latent, keeps the search
variables on their spheres, and runs from the CLI (per-file errors) and through ``evaluate``."""

from __future__ import annotations

import argparse
import csv
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from src.archs import DCGANGenerator, StyleGAN2Generator
from src.config.validation import ConfigError
from src.data.image_io import load_image, save_image
from src.degradations import imresize
from src.methods.pulse import (
    LatentSpace,
    Pulse,
    PulseSettings,
    geocross,
    load_generator,
    lr_factor,
    project_to_sphere,
    save_generator,
)

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SG2 = {"_target_": "src.archs.StyleGAN2Generator", "size": 16, "style_dim": 16, "n_mlp": 2, "channel_max": 16}
DCGAN = {"_target_": "src.archs.DCGANGenerator", "latent_dim": 8, "channels": 1, "base_size": 3,
         "num_upsamples": 3, "num_feat": 4}


def _stylegan(seed: int = 0) -> StyleGAN2Generator:
    torch.manual_seed(seed)
    return StyleGAN2Generator(**{k: v for k, v in SG2.items() if k != "_target_"}).eval()


def _target(g: StyleGAN2Generator, seed: int) -> torch.Tensor:
    """HR = G(z*) in [0, 1] units (not clamped: exactly reachable) for a known z*, through the mapping network."""
    with torch.no_grad():
        z = torch.randn(1, g.latent_dim, generator=torch.Generator().manual_seed(seed))
        return ((g(g.mapping(z)) + 1) / 2)[0]


def test_search_reaches_eps_from_a_random_start_and_stays_on_the_spheres():
    g = _stylegan()
    hr = _target(g, seed=7)
    lr = imresize(hr.unsqueeze(0), 0.25)[0]
    settings = PulseSettings(steps=100, restarts=1, gaussian_fit_samples=2000, eps=2e-3)
    norm_errors, noise_errors = [], []

    def on_step(restart, step, u, noise):
        norm_errors.append(float((u.double().norm(dim=-1) - math.sqrt(u.shape[-1])).abs().max()))
        noise_errors.extend(float((n.double().norm() - math.sqrt(n.numel())).abs()) for n in noise)

    result = Pulse(g, settings).search(lr, 4, callback=on_step)
    assert result.log[0]["mse"] > 20 * settings.eps  # a real search: the random start is far off
    assert result.reached_eps and result.mse <= settings.eps
    assert 0 < result.steps < settings.steps and len(norm_errors) == result.steps
    assert max(norm_errors) < 1e-5 and max(noise_errors) < 1e-5 and len(noise_errors) == 5 * result.steps
    # the reported PSNR is that of the written (clamped, 8-bit) image's downscaling against the input
    assert result.psnr == pytest.approx(-10 * math.log10(float((result.downscaled - lr).square().mean())))
    assert result.image.shape == (3, 16, 16) and result.downscaled.shape == (3, 4, 4)


def test_one_latent_for_every_layer_and_fixed_noise():
    g = _stylegan()
    lr = imresize(_target(g, seed=3).unsqueeze(0), 0.25)[0]
    settings = PulseSettings(steps=100, restarts=2, per_layer_latents=False, noise="fixed", gaussian_fit_samples=2000)
    shapes = []
    result = Pulse(g, settings).search(lr, callback=lambda r, s, u, n: shapes.append((tuple(u.shape), len(n))))
    assert set(shapes) == {((1, 1, 16), 0)}
    assert result.mse < result.log[0]["mse"] / 10  # scale inferred (16 / 4), loss went down a lot


def test_lr_schedules():
    assert lr_factor("fixed", 37, 100) == 1.0
    assert [round(lr_factor("linear1cycle", s, 100), 6) for s in (0, 25, 50, 75)] == [0.1, 0.55, 1.0, 0.55]
    assert lr_factor("linear1cycledrop", 0, 100) == pytest.approx(0.1)
    assert lr_factor("linear1cycledrop", 45, 100) == pytest.approx(1.0)
    assert lr_factor("linear1cycledrop", 90, 100) == pytest.approx(0.1)
    assert lr_factor("linear1cycledrop", 100, 100) == pytest.approx(0.001)


def test_geocross_and_projection():
    d = 8
    u = project_to_sphere(torch.randn(2, 3, d), (2,))
    assert torch.allclose(u.norm(dim=-1), torch.full((2, 3), math.sqrt(d)), atol=1e-5)
    same = u[:, :1].expand(-1, 4, -1)
    assert float(geocross(same)) < 1e-6
    ortho = torch.zeros(1, 2, d)
    ortho[0, 0, 0], ortho[0, 1, 1] = 3.0, 5.0  # lengths do not matter, only directions
    # ordered pairs (0,1), (1,0) at pi/2, the diagonal at 0: mean theta^2 = pi^2 / 8, times d / 8
    assert float(geocross(ortho)) == pytest.approx((math.pi**2 / 8) * d / 8, rel=1e-5)
    anti = torch.stack([ortho[0, 0], -ortho[0, 0]]).unsqueeze(0)
    assert float(geocross(anti)) == pytest.approx((math.pi**2 / 2) * d / 8, rel=1e-4)


def test_gaussian_fit_of_w():
    g = _stylegan()
    space = LatentSpace(g, samples=4000, seed=1)
    with torch.no_grad():
        v = torch.nn.functional.leaky_relu(g.mapping(torch.randn(4000, 16)), 5.0)
    assert torch.allclose(space.mean, v.mean(0), atol=4 * float(v.std(0).max()) / math.sqrt(4000))
    w = space(torch.zeros(1, 1, 16))  # the centre of the search: leaky_relu(mu, 0.2), repeated for every layer
    assert w.shape == (1, g.num_latents, 16)
    assert torch.allclose(w[0, 3], torch.nn.functional.leaky_relu(space.mean, 0.2))
    assert LatentSpace(DCGANGenerator(8, 1, 3, 3, 4)).mean is None  # no mapping network: u is the latent


def test_settings_are_validated():
    with pytest.raises(ConfigError, match=r"search.step.*Did you mean 'steps'"):
        PulseSettings.from_config({"step": 5})
    with pytest.raises(ConfigError, match=r"search.noise='random': expected one of zero, fixed, trainable"):
        PulseSettings.from_config({"noise": "random"})
    with pytest.raises(ConfigError, match=r"search.restarts=0: expected an integer >= 1"):
        PulseSettings.from_config({"restarts": 0})
    with pytest.raises(ValueError, match=r"a 5x5 LR image at x4 is 20x20, but the generator makes 16x16"):
        Pulse(_stylegan()).check_input(torch.rand(3, 5, 5), 4)


def test_generator_files(tmp_path):
    g = _stylegan()
    # rosinality's training checkpoints: {g, d, g_ema, ..., args (argparse.Namespace)}
    torch.save({"g_ema": g.state_dict(), "d": {}, "args": argparse.Namespace(size=16)}, tmp_path / "ros.pt")
    loaded = load_generator(SG2, tmp_path / "ros.pt")
    latents = torch.randn(1, g.num_latents, 16)
    with torch.no_grad():
        assert torch.equal(loaded(latents), g(latents))
    with pytest.raises(ConfigError, match="has no architecture inside: give generator.arch"):
        load_generator(None, tmp_path / "ros.pt")
    with pytest.raises(ValueError, match=r"does not fit src.archs.StyleGAN2Generator.*shape mismatch"):
        load_generator({**SG2, "channel_max": 8}, tmp_path / "ros.pt")
    net = DCGANGenerator(**{k: v for k, v in DCGAN.items() if k != "_target_"}).eval()
    save_generator(tmp_path / "suite.pt", DCGAN, net)
    again = load_generator(None, tmp_path / "suite.pt")
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(again(z), net(z))
    with pytest.raises(ConfigError, match="carries its own architecture"):
        load_generator(SG2, tmp_path / "suite.pt")


def test_cli_folder_with_a_bad_file(tmp_path):
    """Two good LR images and one unreadable file: both good ones are done, the bad one is named, exit 2."""
    g = _stylegan()
    torch.save({"g_ema": g.state_dict()}, tmp_path / "g.pt")
    lr_dir = tmp_path / "lr"
    for seed in (1, 2):
        save_image(imresize(_target(g, seed).unsqueeze(0), 0.25)[0].clamp(0, 1), lr_dir / f"face{seed}.png")
    (lr_dir / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    arch = ",".join(f"{k}:{v}" for k, v in SG2.items())
    proc = subprocess.run(
        [sys.executable, "-m", "src.pulse", f"input={lr_dir}", f"output={out}",
         f"generator.weights={tmp_path / 'g.pt'}", f"generator.arch={{{arch}}}", "search.steps=20",
         "search.restarts=1", "search.gaussian_fit_samples=500",
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2, proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "1 of 3 image(s) failed" in error_lines[0] and "broken.png" in error_lines[0]
    assert "Traceback" not in proc.stderr
    for seed in (1, 2):
        assert load_image(out / f"face{seed}_pulse.png").shape == (3, 16, 16)
        assert load_image(out / f"face{seed}_pulse_lr.png").shape == (3, 4, 4)
        steps = list(csv.DictReader((out / f"face{seed}_pulse_log.csv").read_text().splitlines()))
        assert 1 <= len(steps) <= 20 and float(steps[-1]["mse"]) < float(steps[0]["mse"])
    assert not (out / "broken_pulse.png").exists() and not list(out.glob(".*tmp*"))
    rows = {r["image"]: r for r in csv.DictReader((out / "pulse_results.csv").read_text().splitlines())}
    assert set(rows) == {"face1.png", "face2.png", "broken.png"} and rows["broken.png"]["error"]
    assert rows["face1.png"]["scale"] == "4"
    for seed in (1, 2):  # the reported PSNR is that of the written files
        lr_in, hr_out = load_image(lr_dir / f"face{seed}.png"), load_image(out / f"face{seed}_pulse.png")
        down = load_image(out / f"face{seed}_pulse_lr.png")
        assert torch.equal(down, imresize(hr_out.unsqueeze(0), 0.25)[0].clamp(0, 1).mul(255).round().div(255))
        psnr = -10 * math.log10(float((down.double() - lr_in.double()).square().mean()))
        assert float(rows[f"face{seed}.png"]["psnr_down"]) == pytest.approx(psnr, abs=1e-3)
    assert "downscaling PSNR" in proc.stdout


def test_evaluate_methods_with_pulse(tmp_path):
    """PULSE as a method of evaluate: a benchmark set at the generator's resolution, scored with bicubic."""
    from src.evaluation.run import evaluate

    net = DCGANGenerator(**{k: v for k, v in DCGAN.items() if k != "_target_"}).eval()
    save_generator(tmp_path / "g.pt", DCGAN, net)
    with torch.no_grad():
        faces = ((net(torch.randn(2, 8, generator=torch.Generator().manual_seed(5))) + 1) / 2).clamp(0, 1)
    for i, face in enumerate(faces):
        save_image(face, tmp_path / "bench" / "Gen" / "HR" / f"g{i}.png")
    methods = (f"[{{name: bicubic, model: bicubic}}, {{name: pulse, model: pulse, overrides: {{generator: "
               f"{{weights: '{tmp_path / 'g.pt'}'}}, search: {{steps: 30, restarts: 1}}}}}}]")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"methods={methods}", f"benchmarks.root={tmp_path / 'bench'}",
                                             "benchmarks.sets=[Gen]", "benchmarks.scales=[4]", "device=cpu",
                                             "metrics.names=[psnr_y,lpips]", "metrics.lpips_weights=random",
                                             "metrics.lpips_net=vgg",
                                             "compare.images=[g0.png]"])
    summary = evaluate(cfg, tmp_path / "run")
    rows = {row.method: row for row in summary}
    assert set(rows) == {"bicubic", "pulse"} and rows["pulse"].values["params"] == sum(
        p.numel() for p in net.parameters())
    assert 0 < rows["pulse"].values["psnr_y"] < 100 and rows["pulse"].values["seconds"] > 0
    assert (tmp_path / "run" / "perception_distortion.png").is_file()
    assert (tmp_path / "run" / "compare" / "Gen_g0_x4.png").is_file()


def test_model_config_composes():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("pulse", overrides=["input=x", "output=y"])
        model = compose("evaluate", overrides=["model=pulse"]).model
    assert cfg.generator.arch._target_ == "src.archs.StyleGAN2Generator" and cfg.search.eps == 2e-3
    assert OmegaConf.to_container(model.search) == OmegaConf.to_container(cfg.search)
    assert model.generator.arch is None and model._target_ == "src.methods.pulse.PULSESR"


def test_train_model_pulse_points_to_evaluate_with_the_generator_weights(capsys):
    """PULSE has nothing to train; the hint names the generator file it needs (as given, or a placeholder)."""
    import src.config.validation  # noqa: F401  (resolvers)
    from src.training.run import train

    for given, shown in ((None, "<file or zoo name>"), ("stylegan2_ffhq_config_f", "stylegan2_ffhq_config_f")):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train", overrides=["model=pulse"] + ([f"model.generator.weights={given}"] if given else []))
        assert train(cfg) is None
        assert capsys.readouterr().out.strip() == ("model=pulse has no parameters to train. Score it with: python -m "
                                                   f"src.evaluate model=pulse model.generator.weights={shown}")
