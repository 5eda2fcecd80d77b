"""Degradation pipelines (classical, Real-ESRGAN): configs, seeding, the pair pool, the DataModule, the CLIs."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

import src.config.validation  # noqa: F401  (resolvers)
from src.config.schema import TrainConfig
from src.config.validation import validate
from src.data import SampleDataModule
from src.data.batch import SRBatch
from src.degradations import BicubicDegradation, ClassicalDegradation, RealESRGANDegradation, TrainingPairPool
from tests.cli_helpers import run_cli as _run_cli

run_cli = functools.partial(_run_cli, timeout=240)

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"

# options/train_realesrgan_x4plus.yml (xinntao/Real-ESRGAN) and RealESRGANDataset's hard-coded values
PUBLISHED = {
    "queue_size": 180,
    "kernel_sizes": [7, 9, 11, 13, 15, 17, 19, 21],
    "resize_modes": ["area", "bilinear", "bicubic"],
    "usm_weight": 0.5, "usm_radius": 50, "usm_threshold": 10,
    "kernel_list": ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"],
    "kernel_prob": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    "sinc_prob": 0.1, "blur_sigma": [0.2, 3], "betag_range": [0.5, 4], "betap_range": [1, 2],
    "resize_prob": [0.2, 0.7, 0.1], "resize_range": [0.15, 1.5], "gaussian_noise_prob": 0.5,
    "noise_range": [1, 30], "poisson_scale_range": [0.05, 3], "gray_noise_prob": 0.4, "jpeg_range": [30, 95],
    "second_blur_prob": 0.8,
    "kernel_list2": ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"],
    "kernel_prob2": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    "sinc_prob2": 0.1, "blur_sigma2": [0.2, 1.5], "betag_range2": [0.5, 4], "betap_range2": [1, 2],
    "resize_prob2": [0.3, 0.4, 0.3], "resize_range2": [0.3, 1.2], "gaussian_noise_prob2": 0.5,
    "noise_range2": [1, 25], "poisson_scale_range2": [0.05, 2.5], "gray_noise_prob2": 0.4, "jpeg_range2": [30, 95],
    "final_sinc_prob": 0.8,
}


def compose_train(*overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose("train", overrides=list(overrides))


def hr_batch(n: int = 4, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Smooth-ish random images (blurred noise), float in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size // 4, size // 4, generator=g)
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def degrade(deg, hr: torch.Tensor, training: bool = True) -> SRBatch:
    """``deg`` applied to a batch of the HR images ``hr``."""
    return deg(SRBatch(hr=hr, training=training))


def lr_of(deg, hr: torch.Tensor) -> torch.Tensor:
    """The deterministic (validation) LR of ``hr``."""
    return degrade(deg, hr, training=False).lr


# ---- configs ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["classical", "realesrgan"])
def test_config_validates_and_instantiates(name):
    cfg = compose_train(f"degradation={name}", "scale=2", "seed=7")
    validate(cfg, TrainConfig)
    deg = instantiate(cfg.degradation)
    assert deg.scale == 2 and deg.seed == 7
    assert type(deg).__name__ == {"classical": "ClassicalDegradation", "realesrgan": "RealESRGANDegradation"}[name]


def test_realesrgan_config_and_defaults_are_the_published_numbers():
    cfg = OmegaConf.to_container(compose_train("degradation=realesrgan").degradation)
    import inspect

    defaults = {k: p.default for k, p in inspect.signature(RealESRGANDegradation).parameters.items()}
    for key, value in PUBLISHED.items():
        assert cfg[key] == value, key
        default = defaults[key]
        assert (list(default) if isinstance(default, tuple) else default) == value, key


def test_bad_parameters_name_the_key():
    with pytest.raises(ValueError, match="kernel_list"):
        RealESRGANDegradation(kernel_list=["iso", "box"], kernel_prob=[1, 1])
    with pytest.raises(ValueError, match="jpeg_range2"):
        RealESRGANDegradation(jpeg_range2=[30, 120])
    with pytest.raises(ValueError, match="resize_modes"):
        ClassicalDegradation(scale=4, resize_modes=["lanczos"])


# ---- outputs and seeding ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [ClassicalDegradation, RealESRGANDegradation])
def test_outputs_shapes_ranges_and_8bit_levels(cls):
    deg = cls(scale=4, seed=0)
    hr = hr_batch()
    for _ in range(3):
        out = degrade(deg, hr, training=True)
        lr = out.lr
        assert lr.shape == (4, 3, 16, 16) and lr.dtype == torch.float32 and lr.is_contiguous()
        assert lr.min() >= 0 and lr.max() <= 1 and torch.equal((lr * 255).round() / 255, lr)
        assert out.hr.shape == hr.shape
    if cls is RealESRGANDegradation:
        assert out.hr_usm.shape == hr.shape
    assert lr_of(deg, hr[:1]).shape == (1, 3, 16, 16)  # a single image


@pytest.mark.parametrize("cls", [ClassicalDegradation, RealESRGANDegradation])
def test_same_seed_same_lr_batches(cls):
    hr = hr_batch()
    a, b, c = cls(scale=4, seed=3), cls(scale=4, seed=3), cls(scale=4, seed=4)
    for _ in range(2):
        la, lb, lc = (degrade(d, hr, training=True).lr for d in (a, b, c))
        assert torch.equal(la, lb)
        assert not torch.equal(la, lc)


@pytest.mark.parametrize("cls", [ClassicalDegradation, RealESRGANDegradation])
def test_validation_is_deterministic_and_leaves_training_alone(cls):
    hr = hr_batch(2)
    a, b = cls(scale=4, seed=5), cls(scale=4, seed=5)
    first = lr_of(a, hr)
    assert torch.equal(first, lr_of(a, hr)) and torch.equal(first, degrade(a, hr, training=False).lr)
    degrade(a, hr, training=True)
    assert torch.equal(first, lr_of(a, hr))
    degrade(b, hr, training=True)
    assert torch.equal(degrade(a, hr, training=True).lr, degrade(b, hr, training=True).lr)


def test_pipeline_pickles_without_its_generators_and_pool():
    """ddp_spawn sends the DataModule (and its degradation) to new processes: state is rebuilt there."""
    import pickle

    deg = RealESRGANDegradation(scale=4, seed=1, queue_size=4)
    degrade(deg, hr_batch(4, 32), training=True)
    assert deg.pool.count == 4
    clone = pickle.loads(pickle.dumps(deg))
    assert clone.pool.count == 0 and clone.pool.size == 4 and clone._train_rng is None
    fresh = RealESRGANDegradation(scale=4, seed=1, queue_size=4)
    hr = hr_batch(4, 32, seed=2)
    assert torch.equal(degrade(clone, hr).lr, degrade(fresh, hr).lr)


def test_runs_in_fp32_under_autocast_and_accepts_uint8():
    deg = RealESRGANDegradation(scale=2, seed=0, queue_size=0)
    hr = hr_batch(2, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = degrade(deg, hr, training=True)
    assert out.lr.dtype == torch.float32 and out.hr_usm.dtype == torch.float32
    u8 = (hr * 255).round().to(torch.uint8)
    assert degrade(deg, u8, training=False).lr.shape == (2, 3, 16, 16)


def test_tiny_patches_survive_extreme_draws():
    """A 16 px HR patch at x4 goes down to 2 px after a 0.15 resize: padding and resizing must cope."""
    deg = RealESRGANDegradation(scale=4, seed=0, queue_size=0, resize_prob=[0, 1, 0], resize_prob2=[0, 1, 0])
    for _ in range(6):
        lr = degrade(deg, hr_batch(2, 16), training=True).lr
        assert lr.shape == (2, 3, 4, 4) and torch.isfinite(lr).all()


def test_classical_with_every_step_off_is_bicubic():
    deg = ClassicalDegradation(scale=4, blur_prob=0, noise_prob=0, jpeg_prob=0, resize_modes=["matlab_bicubic"])
    hr = hr_batch()
    assert torch.equal(degrade(deg, hr, training=True).lr, lr_of(BicubicDegradation(4), hr))


def test_classical_steps_change_the_output():
    hr = hr_batch()
    base = dict(scale=4, seed=0, blur_prob=0, noise_prob=0, jpeg_prob=0, resize_modes=["matlab_bicubic"])
    plain = lr_of(ClassicalDegradation(**base), hr)
    for step in ("blur_prob", "noise_prob", "jpeg_prob"):
        assert not torch.equal(lr_of(ClassicalDegradation(**{**base, step: 1.0}), hr), plain), step


def test_crop_size_crops_aligned_pairs():
    deg = RealESRGANDegradation(scale=4, seed=0, queue_size=0, crop_size=32)
    out = degrade(deg, hr_batch(2, 64), training=True)
    assert out.lr.shape == (2, 3, 8, 8) and out.hr.shape == (2, 3, 32, 32) and out.hr_usm.shape[-1] == 32


# ---- the training-pair pool ---------------------------------------------------------------------------------------
def test_pool_fills_then_swaps_whole_pairs():
    pool = TrainingPairPool(6)
    g = torch.Generator().manual_seed(0)
    seen = {}
    outputs = []
    for step in range(6):
        ids = torch.arange(step * 4, step * 4 + 4, dtype=torch.float32)
        batch = {"lr": ids.view(4, 1, 1, 1).expand(4, 1, 2, 2).clone(), "hr": ids.view(4, 1, 1, 1).repeat(1, 1, 4, 4)}
        for i in ids.tolist():
            seen[i] = step
        out = pool(batch, g)
        outputs.append(out)
        if step == 0:  # filling: passes through (6 is not a multiple of 4: the second batch half fits)
            assert out is batch
    assert pool.count == 6
    for out in outputs[2:]:
        lr_ids, hr_ids = out["lr"][:, 0, 0, 0], out["hr"][:, 0, 0, 0]
        assert torch.equal(lr_ids, hr_ids)  # pairs stay pairs
        assert torch.equal(out["hr"], hr_ids.view(4, 1, 1, 1).expand(4, 1, 4, 4))
    mixed = torch.cat([o["lr"][:, 0, 0, 0] for o in outputs[2:]])
    assert len(set(mixed.tolist())) == len(mixed)  # each pair leaves the pool once
    assert any(seen[i] < 2 for i in mixed.tolist())  # earlier batches come back


def test_realesrgan_pool_is_used_in_training_only():
    deg = RealESRGANDegradation(scale=4, seed=0, queue_size=8)
    plain = RealESRGANDegradation(scale=4, seed=0, queue_size=0)
    hrs = [hr_batch(4, 32, seed=s) for s in range(4)]
    for i, hr in enumerate(hrs):
        out, ref = degrade(deg, hr, training=True), degrade(plain, hr, training=True)
        if i < 2:  # filling
            assert torch.equal(out.lr, ref.lr) and torch.equal(out.hr, hr)
        count = deg.pool.count
        val = degrade(deg, hr, training=False)
        assert torch.equal(val.hr, hr) and deg.pool.count == count
    assert not torch.equal(out.hr, hrs[-1])  # swapped with pooled pairs


# ---- the DataModule -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bicubic", "classical", "realesrgan"])
def test_sample_datamodule_with_each_pipeline(name):
    cfg = compose_train(f"degradation={name}", "scale=4")
    deg = instantiate(cfg.degradation)
    dm = SampleDataModule(scale=4, degradation=deg, train_photos=["chelsea", "rocket"], val_photos=["astronaut"],
                          patch_size=32, batch_size=4, num_workers=0, repeat=2, val_crop=64)
    dm.setup("fit")
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch.hr.shape == (4, 3, 32, 32) and batch.hr.dtype == torch.float32
    assert batch.lr.shape == (4, 3, 8, 8) and batch.lr.dtype == torch.float32
    assert (batch.hr_usm is not None) == (name == "realesrgan")
    val = dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)
    assert val.lr.shape == (1, 3, 16, 16) and val.hr.shape == (1, 3, 64, 64)
    again = dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)
    assert torch.equal(val.lr, again.lr)  # validation LR is fixed


def test_multiscale_batches_with_a_random_pipeline():
    deg = ClassicalDegradation(scale=4, seed=0)
    dm = SampleDataModule(scale=4, degradation=deg, train_photos=["chelsea"], val_photos=["astronaut"],
                          patch_size=36, batch_size=2, num_workers=0, repeat=4, train_scales=[2, 3])
    dm.setup("fit")
    for batch in dm.train_dataloader():
        out = dm.on_after_batch_transfer(batch, 0)
        s = out.scale
        assert out.lr.shape[-1] * s == out.hr.shape[-1]


# ---- the command lines --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["realesrgan", "classical"])
def test_smoke_training_with_pipeline(name, tmp_path):
    proc = run_cli("src.train", "experiment=smoke", f"degradation={name}", "trainer.enable_progress_bar=false",
                   "report.enabled=false", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_degrade_cli_writes_files_and_refuses_to_overwrite(tmp_path):
    from src.data.image_io import save_image

    src_dir = tmp_path / "in"
    save_image(hr_batch(1, 48)[0], src_dir / "a.png")
    save_image(hr_batch(1, 40, seed=1)[0], src_dir / "b.png")
    out = tmp_path / "out"
    args = (f"input={src_dir}", f"output={out}", "count=2", "save_hr=true", f"hydra.run.dir={tmp_path / 'run'}")
    proc = run_cli("src.degrade", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted(p.name for p in out.glob("*.png"))  # .srsuite/ holds the run's settings
    assert names == ["a_hr.png", "a_realesrgan_x4_s0_0.png", "a_realesrgan_x4_s0_1.png", "b_hr.png",
                     "b_realesrgan_x4_s0_0.png", "b_realesrgan_x4_s0_1.png"]
    from src.data.image_io import load_image

    lr0, lr1 = load_image(out / "a_realesrgan_x4_s0_0.png"), load_image(out / "a_realesrgan_x4_s0_1.png")
    assert lr0.shape == (3, 12, 12) and not torch.equal(lr0, lr1)
    before = (out / "a_realesrgan_x4_s0_0.png").read_bytes()
    from src.data.degraded_examples import degrade

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):  # in-process: saves a start-up
        cfg = compose("degrade", overrides=[*args[:-1], "seed=1", "degradation=classical", "count=1"])
    with pytest.raises(ValueError, match="overwrite=true"):  # a_hr.png exists
        degrade(cfg, "classical")
    assert not (out / "a_classical_x4_s1_0.png").exists()  # nothing written
    assert (out / "a_realesrgan_x4_s0_0.png").read_bytes() == before
    cfg.overwrite = True
    assert len(degrade(cfg, "classical")) == 4


def test_validation_draws_differ_between_images_but_not_between_calls():
    from src.degradations import ClassicalDegradation

    deg = ClassicalDegradation(scale=2, seed=3)
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 3, 64, 64, generator=g)
    assert torch.equal(lr_of(deg, a), lr_of(deg, a))
    assert torch.equal(lr_of(deg, torch.cat([a, b])), lr_of(deg, torch.cat([a, b])))
    first_draws = {deg._rng(False, torch.device("cpu"), x).rand() for x in (a, b, a * 0.5)}
    assert len(first_draws) == 3  # each validation image gets its own (but reproducible) parameters
