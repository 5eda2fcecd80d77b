"""Every model config composes, validates and trains a few steps (tiny widths) on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import src.config.validation  # noqa: F401  (resolvers)
from src.config.schema import TrainConfig
from src.config.validation import ConfigError, validate
from src.training.run import train

CONF = Path(__file__).resolve().parents[1] / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml") if p.stem != "auto")  # auto: tests/test_auto_arch.py
NOT_TRAINED = ("bicubic", "pulse")  # evaluate-only methods: no recipe, no training step
TRAINABLE = [m for m in MODELS if m not in NOT_TRAINED]

# Small widths so that a few CPU steps take well under a second; the structure is what is exercised.
TINY = {
    "srcnn": ["model.arch.num_feat=8", "model.arch.num_feat2=4"],
    "fsrcnn": ["model.arch.d=8", "model.arch.s=4", "model.arch.m=1"],
    "espcn": ["model.arch.num_feat=8"],
    "vdsr": ["model.arch.num_feat=8", "model.arch.num_layers=3"],
    "edsr_baseline": ["model.arch.num_feat=8", "model.arch.num_block=1"],
    "edsr": ["model.arch.num_feat=8", "model.arch.num_block=1"],
    "rcan": ["model.arch.num_feat=8", "model.arch.num_group=1", "model.arch.num_block=1",
             "model.arch.squeeze_factor=4"],
    "rdn": ["model.arch.num_feat=8", "model.arch.num_block=1", "model.arch.num_conv=2", "model.arch.num_grow_ch=4"],
    "msrresnet": ["model.arch.num_feat=8", "model.arch.num_block=1"],
    "srresnet": ["model.arch.num_feat=8", "model.arch.num_block=1"],
    "rrdb": ["model.arch.num_feat=8", "model.arch.num_block=1", "model.arch.num_grow_ch=4"],
    "srvgg_compact": ["model.arch.num_feat=8", "model.arch.num_conv=2"],
    "srgan": ["model.arch.num_feat=8", "model.arch.num_block=1", "model.discriminator.num_feat=4"],
    "rrdb_gan": ["model.arch.num_feat=8", "model.arch.num_block=1", "model.arch.num_grow_ch=4",
                 "model.discriminator.num_feat=4"],
    "esrgan_pro": ["model.arch.num_feat=8", "model.arch.num_block=1", "model.arch.num_grow_ch=4",
                   "model.discriminator.num_feat=4"],
    "realesrnet": ["model.arch.num_feat=8", "model.arch.num_block=1", "model.arch.num_grow_ch=4"],
    "realesrgan": ["model.arch.num_feat=8", "model.arch.num_block=1", "model.arch.num_grow_ch=4",
                   "model.discriminator.num_feat=4"],
    "carn": ["model.arch.num_feat=8"],
    "carn_m": ["model.arch.num_feat=8"],
    "imdn": ["model.arch.nf=16", "model.arch.num_modules=1"],
    "lapsrn": ["model.arch.num_feat=8", "model.arch.depth=1"],
    "mslapsrn": ["model.arch.num_feat=8", "model.arch.depth=1", "model.arch.recursive=2"],
    "wdsr_a": ["model.arch.num_feat=8", "model.arch.block_feats=16", "model.arch.num_block=1"],
    "wdsr_b": ["model.arch.num_feat=8", "model.arch.num_block=1"],
    "drrn": ["model.arch.num_feat=8", "model.arch.num_units=2"],
}


def compose_train(*overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose("train", overrides=list(overrides))


def test_every_model_has_tiny_overrides():
    assert set(TRAINABLE) <= set(TINY), f"add tiny overrides for {set(TRAINABLE) - set(TINY)}"


@pytest.mark.parametrize("model", MODELS)
def test_model_config_validates(model):
    cfg = compose_train(f"model={model}", "logger=[]")
    validate(cfg, TrainConfig)
    assert cfg.model.name == model
    if model not in NOT_TRAINED:
        assert cfg.model.recipe.batch_size > 0 and cfg.model.recipe.max_steps > 0
        assert cfg.data.patch_size == cfg.model.recipe.patch_size


def test_default_config_is_the_documented_job():
    cfg = compose_train()
    assert (cfg.model.name, cfg.scale, cfg.data._target_) == ("espcn", 4, "src.data.SampleDataModule")
    assert cfg.trainer.max_steps == 3000 and list(cfg.logger) == ["wandb", "csv"]
    assert set(cfg.data.val_photos) == {"astronaut", "coffee"}
    assert not set(cfg.data.val_photos) & set(cfg.data.train_photos)


@pytest.mark.parametrize("model", ["realesrnet", "realesrgan"])
def test_real_esrgan_models_select_their_degradation(model):
    cfg = compose_train(f"model={model}", "logger=[]")
    assert cfg.degradation._target_.endswith("RealESRGANDegradation") and cfg.model.content_target_usm
    assert compose_train(f"model={model}", "degradation=bicubic").degradation._target_.endswith("BicubicDegradation")


def test_validation_catches_keys_hydra_cannot():
    cfg = compose_train("+data.val_crops=64", "logger=[]")
    with pytest.raises(ConfigError, match=r"data.val_crops.*Did you mean 'val_crop'"):
        validate(cfg, TrainConfig)


@pytest.mark.parametrize("model", TRAINABLE)
def test_smoke_training_step(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    extra = TINY[model]
    cfg = compose_train(
        "experiment=smoke", f"model={model}", "logger=[]", "trainer.enable_progress_bar=false",
        "trainer.max_steps=2", "trainer.val_check_interval=2", "scale=2", "report.enabled=false", *extra,
    )
    best = train(cfg)
    assert best is not None and 0 < best < 60  # a validation PSNR in dB was computed
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_loss_preset_replaces_a_mapping_loss(tmp_path, monkeypatch):
    """`loss=l1` on a GAN model replaces its content terms (no merge with the VGG term)."""
    import csv

    monkeypatch.chdir(tmp_path)
    cfg = compose_train(
        "experiment=smoke", "model=srgan", "loss=l1", "logger=csv", "trainer.enable_progress_bar=false",
        "trainer.max_steps=1", "trainer.val_check_interval=1", "scale=2", "report.enabled=false",
        *TINY["srgan"],
    )
    OmegaConf.update(cfg, "logger.csv.save_dir", str(tmp_path), merge=False)
    train(cfg)
    header = next(csv.reader((tmp_path / "csv" / "metrics.csv").open()))
    assert "train/g_l1" in header and "train/g_gan" in header and "train/g_percep" not in header


def test_srgan_trains_with_the_papers_discriminator(tmp_path, monkeypatch):
    """`model=srgan experiment=smoke`: SRGAN's own discriminator (Dense(1024) on 96 px patches) by default, the
    VGG-style one still selectable."""
    monkeypatch.chdir(tmp_path)
    cfg = compose_train(
        "experiment=smoke", "model=srgan", "logger=[]", "trainer.enable_progress_bar=false",
        "trainer.max_steps=1", "trainer.val_check_interval=1", "scale=2", "report.enabled=false",
        *TINY["srgan"],
    )
    assert cfg.model.discriminator._target_ == "src.archs.SRGANDiscriminator"
    train(cfg)
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert state["net_d.dense1.weight"].shape == (1024, 8 * 4 * 6 * 6)  # 8 x num_feat channels, 96 / 16 = 6
    assert state["net_d.dense2.weight"].shape == (1, 1024)
    vgg = compose_train("model=srgan", "model.discriminator._target_=src.archs.VGGStyleDiscriminator", "logger=[]")
    validate(vgg, TrainConfig)
