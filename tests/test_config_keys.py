"""Unknown or misspelled keys anywhere on the command line give one `error:` line with the closest valid key (exit 2),
before Hydra's own struct error; the typed schemas of src/config/schema.py are what every entry point composes."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from src.config.command_line import check_command_line
from src.config.ranges import RANGES
from src.config.schema import ENTRY_SCHEMAS, TrainConfig, keys_of
from src.config.validation import ConfigError, validate

REPO = Path(__file__).resolve().parents[1]
REQUIRED = {  # the ??? keys of each entry point
    "train": [], "evaluate": [], "upscale": ["input=a.png", "output=o"], "degrade": ["input=a.png", "output=o"],
    "interpolate": ["a=x.pth", "b=y.pth", "output=o.pth"], "report": ["runs=outputs"], "download": [],
    "pulse": ["input=a.png", "output=o"], "export": ["ckpt=a.ckpt", "output=o.pth"],
    "prepare": ["input=hr", "output=sub"],
}


def error_line(capsys, entry: str, *argv: str) -> str:
    with pytest.raises(SystemExit) as info:
        check_command_line(f"src.{entry}", entry, [*REQUIRED[entry], *argv])
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize("entry, override, key, closest", [
    ("train", "data.patch_sise=32", "data.patch_sise", "patch_size"),
    ("train", "sead=1", "sead", "seed"),
    ("train", "model.arch.num_fet=8", "model.arch.num_fet", "num_feat"),
    ("train", "trainer.max_step=10", "trainer.max_step", "max_steps"),
    ("train", "degradation.scal=2", "degradation.scal", "scale"),
    ("evaluate", "benchmarks.set=[Set5]", "benchmarks.set", "sets"),
    ("evaluate", "metrics.y_round=false", "metrics.y_round", "y_rounding"),
    ("upscale", "tiel=64", "tiel", "tile"),
    ("degrade", "degradation.jpeg_rnge=[30,95]", "degradation.jpeg_rnge", "jpeg_range"),
    ("interpolate", "alpah=0.5", "alpah", "alpha"),
    ("report", "plot_metrc=niqe", "plot_metrc", "plot_metric"),
    ("download", "nmes=[div2k]", "nmes", "names"),
    ("pulse", "search.step=5", "search.step", "steps"),
    ("export", "formt=onnx", "formt", "format"),
    ("prepare", "lr_scale=[2]", "lr_scale", "lr_scales"),
])
def test_misspelled_key_names_the_closest(capsys, entry, override, key, closest):
    line = error_line(capsys, entry, override)
    assert f"unknown config key '{key}'" in line and f"Did you mean '{closest}'?" in line and "Valid keys: " in line
    assert closest in line.split("Valid keys: ")[1].split(", ")


def test_multirun_sweeps_are_checked_with_their_first_value(capsys):
    line = error_line(capsys, "train", "--multirun", "model=srcnn,espcn", "data.patch_sise=16,32")
    assert "'data.patch_sise'" in line and "Did you mean 'patch_size'?" in line


def test_a_parameter_the_config_leaves_out_is_named(capsys):
    line = error_line(capsys, "train", "trainer.fast_dev_run=1")
    assert line == ("error: config key 'trainer.fast_dev_run' is a parameter of lightning.Trainer that the config "
                    "of 'trainer' leaves out: add it with +trainer.fast_dev_run=1")


def test_unknown_group_option_names_the_closest(capsys):
    line = error_line(capsys, "train", "model=espcnn")
    assert "Did you mean 'espcn'?" in line and "Available options in 'model'" in line and "rrdb_gan" in line


def test_badly_typed_switch(capsys):
    line = error_line(capsys, "upscale", "overwrite=maybe")
    assert line.startswith("error: overwrite: ") and "maybe" in line


def test_correct_command_lines_pass():
    check_command_line("src.train", "train", ["model=rrdb_gan", "data.patch_size=32", "+trainer.fast_dev_run=1"])


def test_cli_prints_one_error_line(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    proc = subprocess.run([sys.executable, "-m", "src.train", "data.patch_sise=32", f"hydra.run.dir={tmp_path}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: unknown config key 'data.patch_sise' for 'data'. Did you mean 'patch_size'? Valid keys: batch_size, "
        "cache, layout, num_workers, on_bad_file, patch_size, repeat, root, scale, train_photos, train_scales, "
        "val_crop, val_limit, val_name, val_photos"]
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", sorted(ENTRY_SCHEMAS))
def test_schema_keys_are_the_composed_keys(name):
    """The schema and conf/<name>.yaml hold the same top-level keys (group slots aside when not selected)."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(name, overrides=REQUIRED[name])
    assert set(cfg) == set(keys_of(ENTRY_SCHEMAS[name]))


def test_added_keys_are_checked_against_the_schema():
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["+checkpoint.every_n_steps=5", "logger=[]"])
    with pytest.raises(ConfigError, match=r"'checkpoint.every_n_steps' .*Did you mean 'every_n_train_steps'"):
        validate(cfg, TrainConfig)


def test_range_checked_keys_are_untyped_in_the_schemas():
    """RANGES owns the type and range of numeric knobs (one message per key): the schemas leave them `Any`."""
    import typing

    from src.config.schema import CheckpointConfig, DataConfig, GuardConfig, ReportConfig, TrainerConfig
    nodes = {"": TrainConfig, "data": DataConfig, "trainer": TrainerConfig, "checkpoint": CheckpointConfig,
             "guard": GuardConfig, "report": ReportConfig}
    checked = 0
    for pattern in RANGES:
        node, _, key = pattern.rpartition(".")
        if node in nodes and key in {f.name for f in fields(nodes[node])}:
            assert typing.get_type_hints(nodes[node])[key] is typing.Any, pattern
            checked += 1
    assert checked >= 25


def test_recipe_keys_are_checked():
    from src.training.run import check_run_settings

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["+model.recipe.batch_sise=3", "logger=[]"])
    with pytest.raises(ConfigError, match=r"'model.recipe.batch_sise' .*Did you mean 'batch_size'"):
        check_run_settings(cfg)
