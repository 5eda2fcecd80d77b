"""Bad image files (issue 12, item 7): training data is decoded up front (cached) and a bad file is named and
skipped or refused; upscale / degrade process the good files of a folder, list the bad ones, exit non-zero, and a
rerun resumes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CONF = str(REPO / "conf")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SR_CACHE", str(tmp_path / "cache"))


def photo(path: Path, size: int = 48, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)).save(path)
    return path


def broken_folder(folder: Path, good: int = 5) -> dict[str, Path]:
    for i in range(good):
        photo(folder / f"good{i}.png", seed=i)
    truncated = folder / "truncated.png"
    truncated.write_bytes((folder / "good0.png").read_bytes()[:600])
    text = folder / "notes.png"
    text.write_text("not an image")
    empty = folder / "empty.jpg"
    empty.write_bytes(b"")
    return {"truncated": truncated, "text": text, "empty": empty}


def folder_data(path: Path, **kwargs):
    from src.data import FolderDataModule

    return FolderDataModule(train_dirs=[str(path)], val_fraction=0.2, scale=4, patch_size=16, batch_size=2,
                            num_workers=0, **kwargs)


def test_training_images_checked_up_front_and_bad_ones_skipped(tmp_path, caplog, monkeypatch):
    bad = broken_folder(tmp_path / "photos")
    dm = folder_data(tmp_path / "photos")
    with caplog.at_level(logging.WARNING, logger="src.data.datamodules"):
        dm.check_files()
    train, (val, _) = dm.train_files(), dm.val_files()
    assert len(train) + len(val) == 5 and not set(bad.values()) & set(train + val)
    warning = caplog.text
    assert "leaving out 3 of 8 training image(s)" in warning
    assert f"{bad['truncated']} (cannot be decoded: image file is truncated" in warning
    assert f"{bad['text']} (not an image PIL can read" in warning
    assert f"{bad['empty']} (empty file (0 bytes))" in warning
    assert len(dm.build_train_set().images) == len(train)
    # the results are cached by path, mtime and size: a second run decodes nothing
    import src.data.checks as checks

    assert len(list((tmp_path / "cache" / "image_checks").glob("*.json"))) == 1
    monkeypatch.setattr(checks, "check_image", lambda p: pytest.fail(f"decoded again: {p}"))
    again = folder_data(tmp_path / "photos")
    again.check_files()
    assert again.train_files() == train
    # a changed file is checked again
    monkeypatch.undo()
    monkeypatch.setenv("SR_CACHE", str(tmp_path / "cache"))
    photo(bad["truncated"], seed=9)
    third = folder_data(tmp_path / "photos")
    third.check_files()
    assert len(third.train_files()) + len(third.val_files()[0]) == 6


def test_bad_training_file_refused_with_on_bad_file_error(tmp_path):
    bad = broken_folder(tmp_path / "photos", good=4)
    with pytest.raises(ValueError, match=r"3 of 7 training image\(s\) cannot be decoded: .*truncated\.png .*"
                                         r"set data\.on_bad_file=skip"):
        folder_data(tmp_path / "photos", on_bad_file="error").check_files()
    # a bad validation image is always an error
    from src.data import FolderDataModule

    val = tmp_path / "val"
    photo(val / "v.png")
    (val / "bad.png").write_bytes(bad["truncated"].read_bytes())
    dm = FolderDataModule(train_dirs=[str(tmp_path / "photos")], val_dirs=[str(val)], scale=4, patch_size=16,
                          batch_size=2, num_workers=0)
    with pytest.raises(ValueError, match=r"1 of 2 validation image\(s\) cannot be decoded: .*bad\.png.*never skipped"):
        dm.check_files()


def test_train_cli_names_the_bad_file_before_training(tmp_path):
    bad = broken_folder(tmp_path / "photos", good=4)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SR_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "src.train", "experiment=smoke", "data=folder",
                           f"data.path={tmp_path / 'photos'}", "data.on_bad_file=error", "data.patch_size=16",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: 3 of 7 training image(s) cannot be decoded") and str(bad["truncated"]) in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def _compose(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(name, overrides=overrides)


def test_upscale_folder_with_a_bad_file_resumes(tmp_path):
    broken_folder(tmp_path / "in", good=3)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SR_CACHE": str(tmp_path / "cache")}
    args = [f"input={tmp_path / 'in'}", f"output={out}", "model=bicubic", "scale=2", "progress=false"]
    proc = subprocess.run([sys.executable, "-m", "src.upscale", *args, f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: 3 of 6 input file(s) could not be read and were skipped")
    assert all(name in errors[0] for name in ("truncated.png", "notes.png", "empty.jpg"))
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["good0_x2.png", "good1_x2.png", "good2_x2.png"]
    # an interrupted rerun: one output lost, one half-written; the third is kept as it is
    (out / "good0_x2.png").unlink()
    (out / "good1_x2.png").write_bytes((out / "good1_x2.png").read_bytes()[:300])
    kept = (out / "good2_x2.png").stat().st_mtime_ns
    from src.data.output_folders import BadInputsError
    from src.inference.upscale import upscale

    with pytest.raises(BadInputsError):
        upscale(_compose("upscale", args))
    assert sorted(p.name for p in out.glob("*.png")) == names
    assert (out / "good2_x2.png").stat().st_mtime_ns == kept
    assert Image.open(out / "good1_x2.png").size == (104, 96)
    # other settings and existing outputs: refused, nothing replaced
    from src.inference.image_files import OutputExistsError

    with pytest.raises(OutputExistsError, match="already exists"):
        upscale(_compose("upscale", [*args[:-2], "scale=2", "ensemble=true"]))
    assert (out / "good2_x2.png").stat().st_mtime_ns == kept


def test_degrade_folder_with_a_bad_file_resumes_reproducibly(tmp_path):
    broken_folder(tmp_path / "in", good=3)
    from src.data.degraded_examples import degrade
    from src.data.output_folders import BadInputsError

    def run(out: Path):
        cfg = _compose("degrade", [f"input={tmp_path / 'in'}", f"output={out}", "degradation=classical",
                                   "scale=2", "count=2"])
        with pytest.raises(BadInputsError, match=r"3 of 6 input file\(s\) could not be read .*truncated\.png"):
            degrade(cfg, "classical")

    run(tmp_path / "full")
    files = sorted(p.name for p in (tmp_path / "full").glob("*.png"))
    assert len(files) == 6
    # interrupted run: the first image done, the second half-written
    part = tmp_path / "part"
    run(part)
    (part / files[2]).unlink()
    (part / files[3]).write_bytes(b"\x89PNG")
    (part / files[4]).unlink()
    before = (part / files[0]).stat().st_mtime_ns
    run(part)
    assert (part / files[0]).stat().st_mtime_ns == before  # kept
    for name in files:  # what an uninterrupted run wrote, byte for byte
        assert (part / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
