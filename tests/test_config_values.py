"""Every numeric knob is type- and range-checked before anything runs (`RANGES` in src/config/ranges.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from src.config.ranges import Range, check_values
from src.config.schema import TrainConfig
from src.config.validation import ConfigError, validate

CONF = str(Path(__file__).resolve().parents[1] / "conf")


@pytest.fixture(scope="module")
def hydra_conf():
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        yield


@pytest.mark.parametrize("override, message", [
    ("data.patch_size=abc", "data.patch_size='abc': expected an integer >= 1 (HR patch side in px)"),
    ("data.patch_size=-8", "data.patch_size=-8: expected an integer >= 1"),
    ("data.patch_size=7.5", "data.patch_size=7.5: expected an integer >= 1"),
    ("trainer.max_steps=-5", "trainer.max_steps=-5: expected an integer >= 1 (the training budget"),
    ("trainer.val_check_interval=0", "trainer.val_check_interval=0: expected an integer >= 1, or a fraction in (0, 1]"),
    ("trainer.val_check_interval=1.5", "trainer.val_check_interval=1.5: expected an integer >= 1, or a fraction"),
    ("data.batch_size=0", "data.batch_size=0: expected an integer >= 1"),
    ("data.batch_size=true", "data.batch_size=True: expected an integer >= 1"),
    ("scale=0", "scale=0: expected an integer >= 1 and <= 16"),
    ("model.optimizer.lr=-1e-3", "model.optimizer.lr=-0.001: expected a number > 0"),
    ("model.optimizer.lr=nan", "model.optimizer.lr=nan: expected a number > 0"),
    ("checkpoint.save_top_k=-3", "checkpoint.save_top_k=-3: expected an integer >= 0, or -1"),
    ("model.arch.num_feat=0", "model.arch.num_feat=0: expected an integer >= 1"),
    ("data.num_workers=-1", "data.num_workers=-1: expected an integer >= 0"),
    ("data.val_crop=0", "data.val_crop=0: expected an integer >= 1, or null"),
])
def test_bad_training_values_name_key_value_and_expectation(hydra_conf, override, message):
    cfg = compose("train", overrides=[override])
    with pytest.raises(ConfigError) as info:
        validate(cfg, TrainConfig)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("overrides", [
    [], ["model=rrdb_gan", "degradation=realesrgan"], ["model=vdsr", "data=div2k"], ["model=bicubic"],
    ["experiment=smoke", "model=fsrcnn"], ["trainer.val_check_interval=0.5", "trainer.max_epochs=-1"],
])
def test_shipped_configs_pass(hydra_conf, overrides):
    validate(compose("train", overrides=overrides), TrainConfig)


@pytest.mark.parametrize("name, overrides, message", [
    ("upscale", ["input=a.png", "output=o", "tile=-3"], "tile=-3: expected an integer >= 0"),
    ("upscale", ["input=a.png", "output=o", "scale=abc"], "scale='abc': expected an integer >= 1"),
    ("degrade", ["input=a.png", "output=o", "count=0"], "count=0: expected an integer >= 1"),
    ("degrade", ["input=a.png", "output=o", "degradation=classical", "degradation.noise_prob=1.5"],
     "degradation.noise_prob=1.5: expected a number >= 0 and <= 1"),
    ("interpolate", ["a=x", "b=y", "output=o", "alphas=[0,0.5,2]"], "alphas[2]=2: expected a number >= 0 and <= 1"),
    ("evaluate", ["samples.crop=-96"], "samples.crop=-96: expected an integer >= 1"),
])
def test_other_entry_points(hydra_conf, name, overrides, message):
    with pytest.raises(ConfigError) as info:
        check_values(compose(name, overrides=overrides))
    assert str(info.value).startswith(message)


def test_range_rules():
    steps = Range(low=1, none=True, fraction=True)
    assert steps.accepts(1) and steps.accepts(0.25) and steps.accepts(1.0) and steps.accepts(None)
    assert not steps.accepts(0) and not steps.accepts(0.0) and not steps.accepts(2.5) and not steps.accepts(True)
    epochs = Range(low=1, special=(-1,))
    assert epochs.accepts(-1) and epochs.accepts(3) and not epochs.accepts(-2) and not epochs.accepts(0)
    open_unit = Range(kind="number", low=0, high=1, low_open=True, high_open=True)
    assert open_unit.accepts(0.999) and not open_unit.accepts(0) and not open_unit.accepts(1)
    assert open_unit.expected() == "a number > 0 and < 1"


def test_train_cli_stops_before_anything_runs(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    proc = subprocess.run([sys.executable, "-m", "src.train", "trainer.val_check_interval=0",
                           f"hydra.run.dir={tmp_path}"], cwd=Path(CONF).parent, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: trainer.val_check_interval=0: expected")
    assert not any((tmp_path / d).exists() for d in ("checkpoints", "csv", "wandb"))
