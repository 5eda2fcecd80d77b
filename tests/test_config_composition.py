"""The README's commands compose to the documented values whatever the order of their arguments: the model selects
its loss preset and degradation in its own defaults list, the recipe reaches data/trainer in conf/train.yaml, and
data=sample sets no trainer key (its demo budget is conf/budget/sample.yaml)."""

from __future__ import annotations

from itertools import permutations
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import src.config  # noqa: F401  (schemas, resolvers)

CONF = Path(__file__).resolve().parents[1] / "conf"
VGG54 = {"conv5_4": 1.0}
VGG_MULTI = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}


@pytest.fixture(scope="module")
def hydra_conf():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield


def key_values(*overrides: str) -> dict:
    cfg = compose("train", overrides=list(overrides))
    loss = cfg.model.loss
    terms = loss if isinstance(loss, str) else {
        name: term.get("loss_weight", term.get("perceptual_weight")) for name, term in loss.items()}
    layers = {name: dict(term.layer_weights) for name, term in ({} if isinstance(loss, str) else loss).items()
              if "layer_weights" in term}
    return {"degradation": cfg.degradation._target_.rsplit(".", 1)[1], "loss": terms, "layers": layers,
            "patch": cfg.data.patch_size, "batch": cfg.data.batch_size, "steps": cfg.trainer.max_steps,
            "val_every": cfg.trainer.val_check_interval, "gan": OmegaConf.select(cfg, "model.gan.loss_weight")}


@pytest.mark.parametrize("overrides, expected", [
    # the default job: ESPCN x4 on the sample photos, 3000 steps
    ([], dict(degradation="BicubicDegradation", loss="mse", patch=68, batch=16, steps=3000, val_every=1000)),
    (["model=srgan"], dict(degradation="BicubicDegradation", loss={"percep": 1.0}, patch=96, batch=16,
                           steps=3000, gan=0.001)),
    (["model=rrdb_gan", "data=div2k"], dict(degradation="BicubicDegradation", loss={"pixel": 0.01, "percep": 1.0},
                                            layers={"percep": VGG54}, patch=128, batch=16, steps=400000,
                                            val_every=5000, gan=0.005)),
    (["model=esrgan_pro", "data=df2k"], dict(loss={"mix": 0.01, "percep": 1.0}, layers={"percep": VGG54},
                                             patch=192, batch=16, steps=400000, gan=0.005)),
    (["model=realesrnet", "data=df2k"], dict(degradation="RealESRGANDegradation", loss={"pixel": 1.0}, patch=256,
                                             batch=12, steps=1000000)),
    (["model=realesrgan", "data=df2k"], dict(degradation="RealESRGANDegradation", loss={"pixel": 1.0, "percep": 1.0},
                                             layers={"percep": VGG_MULTI}, patch=256, batch=12, steps=400000,
                                             gan=0.1)),
    (["model=realesrgan", "degradation=bicubic"], dict(degradation="BicubicDegradation", batch=16, steps=3000)),
    (["model=realesrnet", "degradation=classical"], dict(degradation="ClassicalDegradation")),
    (["model=rrdb_gan", "loss=realesrgan"], dict(loss={"pixel": 1.0, "percep": 1.0}, layers={"percep": VGG_MULTI},
                                                 gan=0.005)),
    (["model=realesrgan", "loss=esrgan"], dict(degradation="RealESRGANDegradation",
                                               loss={"pixel": 0.01, "percep": 1.0}, layers={"percep": VGG54})),
    (["model=srgan", "loss=l1"], dict(loss="l1", gan=0.001)),
    (["model=edsr", "loss=charbonnier", "data=div2k"], dict(loss="charbonnier", patch=192, batch=16, steps=300000)),
    (["model=vdsr", "data=div2k", "scale=3"], dict(loss="mse", patch=41, batch=64, steps=80000)),
    (["experiment=smoke", "model=realesrgan"], dict(degradation="RealESRGANDegradation", patch=96, batch=4, steps=4,
                                                    val_every=4)),
    (["experiment=smoke", "model=fsrcnn", "trainer.max_steps=7"], dict(loss="mse", patch=96, batch=4, steps=7)),
    (["model=espcn", "data=div2k", "data.patch_size=64", "trainer.max_steps=10"], dict(patch=64, batch=16, steps=10)),
])
def test_readme_combinations(hydra_conf, overrides, expected):
    for order in list(permutations(overrides))[:6]:  # the order of the arguments changes nothing
        got = key_values(*order)
        assert {k: got[k] for k in expected} == expected, order


def test_vdsr_trains_multi_scale_from_its_recipe(hydra_conf):
    assert list(compose("train", overrides=["model=vdsr"]).data.train_scales) == [2, 3, 4]
    assert compose("train", overrides=["model=espcn"]).data.train_scales is None


def test_only_presets_are_global():
    """`# @package _global_` only in presets that set several nodes at once: experiment/, hparams_search/ and the
    evaluation protocols of protocol/ (benchmarks.* + metrics.*); nowhere under model/, data/, loss/ …"""
    found = sorted(str(p.relative_to(CONF)) for p in CONF.rglob("*.yaml") if "@package _global_" in p.read_text())
    assert found and all(p.split("/")[0] in ("experiment", "hparams_search", "protocol") for p in found), found


def test_data_and_trainer_configs_do_not_read_the_model():
    for group in ("data", "trainer", "budget", "degradation"):
        for path in (CONF / group).glob("*.yaml"):
            assert "model." not in path.read_text().replace("model.recipe.max_steps).", ""), path


def test_models_do_not_repeat_loss_presets_or_top_level_keys():
    for path in (CONF / "model").glob("*.yaml"):
        text = path.read_text()
        assert "${metrics}" not in text and "${channels_last}" not in text, path
        assert "\nloss:" not in text, path  # the loss preset comes through the defaults list


def test_budget_is_the_data_set_s(hydra_conf):
    """data=sample's demo budget is a trainer config of its own; the data node holds no trainer key."""
    cfg = compose("train", overrides=["data=sample"])
    assert "max_steps" not in cfg.data and cfg.trainer.max_steps == 3000
    assert compose("train", overrides=["data=div2k"]).trainer.max_steps == 100000  # ESPCN's recipe
