"""``python -m src.prepare``: sub-image recipe, LR folders, resume after interruption, errors, and the
DataModules reading prepared folders. Small synthetic images (100x130, crop 48, step 24, thresh 8)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.config.command_line import check_command_line
from src.config.validation import ConfigError
from src.data import FolderDataModule, PairedFolderDataModule
from src.data.prepare import PrepareConfig, config_from, prepare
from src.data.subimages import crop_boxes, crop_starts
from src.degradations import imresize, modcrop
from src.degradations.pipelines import BicubicDegradation
from src.prepare import main as prepare_main

GEOM = dict(crop=48, step=24, thresh=8)
# 100 rows: starts 0, 24, 48; the 4-px leftover (<= thresh) is dropped.
# 130 cols: starts 0, 24, 48, 72, then a border crop at 82 for the 10-px leftover (> thresh).
ROWS, COLS = [0, 24, 48], [0, 24, 48, 72, 82]
CONF = Path(__file__).resolve().parents[1] / "conf"


def _compose(argv: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose("prepare", overrides=argv)


def parse_args(argv: list[str]) -> PrepareConfig:
    """The settings ``python -m src.prepare <argv>`` runs with."""
    return config_from(_compose(argv))


def main(argv: list[str]) -> dict:
    """``python -m src.prepare <argv>`` in this process, returning the summary: the argument check, then the Hydra
    main on ``conf/prepare.yaml`` composed with ``argv``."""
    check_command_line("src.prepare", "prepare", argv)
    return prepare_main(_compose(argv))


def _rgb(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "RGB"
        return np.asarray(img).copy()


def _lr_ref(hr: np.ndarray, s: int) -> np.ndarray:
    """imresize(modcrop(HR, s), 1/s) rounded to uint8, computed independently of the tool."""
    x = torch.from_numpy(hr).permute(2, 0, 1).double() / 255.0
    lr = imresize(modcrop(x, s), 1.0 / s)
    return (lr.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _cfg(src: Path, out: Path, **kw) -> PrepareConfig:
    return PrepareConfig(input=str(src), output=str(out), workers=0, progress=False, **{**GEOM, **kw})


@pytest.fixture(scope="module")
def hr_dir(tmp_path_factory) -> Path:
    """Two 100x130 colour images, one grayscale 100x130 image and one 30x30 image (smaller than the crop)."""
    d = tmp_path_factory.mktemp("hr")
    Image.fromarray(_rgb(100, 130, 0)).save(d / "a.png")
    Image.fromarray(_rgb(100, 130, 1)).save(d / "b.png")
    Image.fromarray(_rgb(100, 130, 2)[..., 0]).save(d / "gray.png")  # mode L -> RGB sub-images
    Image.fromarray(_rgb(30, 30, 3)).save(d / "tiny.png")
    return d


@pytest.fixture(scope="module")
def prepared(hr_dir, tmp_path_factory) -> tuple[Path, Path, dict]:
    out = tmp_path_factory.mktemp("prep") / "HR_sub"
    summary = prepare(_cfg(hr_dir, out, lr_scales=[2, 4]))
    return out, out.parent / "HR_sub_LR_bicubic", summary


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


# -------------------------------------------------------------------------------------------------------------
def test_crop_positions_follow_the_recipe():
    assert crop_starts(100, 48, 24, 8) == ROWS
    assert crop_starts(130, 48, 24, 8) == COLS
    assert crop_starts(130, 48, 24, 10) == [0, 24, 48, 72]  # leftover 10 is not > thresh 10
    assert crop_starts(48, 48, 24, 8) == [0]
    assert crop_starts(47, 48, 24, 8) == []
    # DIV2K-size image with ESRGAN's numbers: 8 x 5 = 40 crops (ESRGAN-Pro: 3,450 images -> 138,843 crops)
    assert crop_starts(2040, 480, 240, 48) == [0, 240, 480, 720, 960, 1200, 1440, 1560]
    assert crop_starts(1356, 480, 240, 48) == [0, 240, 480, 720, 876]
    assert crop_boxes(100, 130, 48, 24, 8)[:6] == [(0, 0), (0, 24), (0, 48), (0, 72), (0, 82), (24, 0)]


def test_subimages_names_pixels_and_lr(hr_dir, prepared):
    out, lr_root, summary = prepared
    n = len(ROWS) * len(COLS)  # 15 per 100x130 image
    stems = ["a", "b", "gray"]
    assert _files(out) == sorted(f"{s}_s{i:03d}.png" for s in stems for i in range(1, n + 1))
    assert summary["too_small"] == ["tiny"]
    assert summary["written"] == 3 * n * 3 and summary["kept"] == 0 and summary["failed"] == 0
    src = {"a": _rgb(100, 130, 0), "b": _rgb(100, 130, 1), "gray": np.repeat(_rgb(100, 130, 2)[..., :1], 3, 2)}
    boxes = [(t, left) for t in ROWS for left in COLS]
    for stem, img in src.items():
        for i, (t, left) in enumerate(boxes, start=1):
            crop = _read(out / f"{stem}_s{i:03d}.png")
            np.testing.assert_array_equal(crop, img[t : t + 48, left : left + 48])
    for s in (2, 4):
        assert _files(lr_root / f"X{s}") == sorted(f"{st}_s{i:03d}x{s}.png" for st in stems for i in range(1, n + 1))
    for i in (1, 5, 15):  # first, the border column, last
        hr = _read(out / f"a_s{i:03d}.png")
        for s in (2, 4):
            lr = _read(lr_root / f"X{s}" / f"a_s{i:03d}x{s}.png")
            assert lr.shape == (48 // s, 48 // s, 3)
            np.testing.assert_array_equal(lr, _lr_ref(hr, s))


def test_whole_image_lr_folders(hr_dir, tmp_path):
    out = tmp_path / "LR_bicubic"
    prepare(_cfg(hr_dir, out, subimages=False, lr_scales=[3, 4]))
    assert _files(out / "X3") == ["ax3.png", "bx3.png", "grayx3.png", "tinyx3.png"]
    img = _rgb(100, 130, 1)
    for s in (3, 4):
        lr = _read(out / f"X{s}" / f"bx{s}.png")
        assert lr.shape == (100 // s, 130 // s, 3)  # from modcrop(HR, s)
        np.testing.assert_array_equal(lr, _lr_ref(img, s))
    assert not any(p.suffix == ".png" for p in out.iterdir())  # only X<s> folders (and .prepare)


def test_resume_after_interruption(hr_dir, tmp_path):
    out = tmp_path / "sub"
    lr4 = tmp_path / "sub_LR_bicubic" / "X4"
    prepare(_cfg(hr_dir, out, lr_scales=[4]))
    before_hr, before_lr = _files(out), _files(lr4)
    old = 1_000_000_000  # an old mtime on every file, so that any rewrite shows
    for p in [*out.iterdir(), *lr4.iterdir()]:
        if p.is_file():
            os.utime(p, ns=(old, old))

    # "interrupted": image a lost two crops and an LR file after its marker was written (a deleted file);
    # image b was cut off mid-way: no marker, one crop truncated, a temporary file left behind
    for name in ("a_s003.png", "a_s011.png"):
        (out / name).unlink()
    (lr4 / "a_s007x4.png").unlink()
    (out / ".prepare" / "b.json").unlink()
    data = (out / "b_s002.png").read_bytes()
    (out / "b_s002.png").write_bytes(data[: len(data) // 2])
    (out / ".b_s003.png.prepare-tmp-12345").write_bytes(b"partial")
    (lr4 / ".b_s003x4.png.prepare-tmp-12345").write_bytes(b"partial")

    summary = prepare(_cfg(hr_dir, out, lr_scales=[4]))
    assert summary["resumed"] == 2  # gray and tiny were complete: not even opened
    assert summary["written"] == 4  # 2 crops + 1 LR of a, the truncated crop of b
    assert summary["kept"] == 2 * 30 - 4  # the rest of a and b (15 HR + 15 LR each), verified pixel by pixel
    assert summary["temp_removed"] == 2
    assert _files(out) == before_hr and _files(lr4) == before_lr  # complete, no duplicates, no temp files
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.is_file()]
    rewritten = {"a_s003.png", "a_s011.png", "b_s002.png", "a_s007x4.png"}
    for p in [*out.iterdir(), *lr4.iterdir()]:
        if p.is_file():
            assert (p.stat().st_mtime_ns == old) == (p.name not in rewritten), p.name
    img = _rgb(100, 130, 1)
    np.testing.assert_array_equal(_read(out / "b_s002.png"), img[0:48, 24:72])
    assert (out / ".prepare" / "b.json").is_file()

    # a third run has nothing to do; verify=true re-checks completed images and repairs a damaged file
    assert prepare(_cfg(hr_dir, out, lr_scales=[4]))["processed"] == 0
    (out / "gray_s015.png").write_bytes(b"not a png")
    assert prepare(_cfg(hr_dir, out, lr_scales=[4]))["written"] == 0  # a done image is trusted …
    summary = prepare(_cfg(hr_dir, out, lr_scales=[4], verify=True))
    assert summary["written"] == 1 and summary["processed"] == 4  # … unless asked to verify
    # adding a scale later completes only the new files
    summary = prepare(_cfg(hr_dir, out, lr_scales=[2, 4]))
    assert summary["written"] == 45 and summary["kept"] == 90


def test_cli_parallel_workers_match_in_process(hr_dir, tmp_path, capsys):
    ref = tmp_path / "ref"
    prepare(_cfg(hr_dir, ref, lr_scales=[2]))
    par = tmp_path / "par"
    args = [f"input={hr_dir}", f"output={par}", "crop=48", "step=24", "thresh=8", "lr_scales=[2]", "workers=2"]
    summary = main([*args, "progress=false"])
    assert summary["written"] == 90 and summary["failed"] == 0
    assert "90 files written" in capsys.readouterr().out
    for folder, other in ((ref, par), (ref.parent / "ref_LR_bicubic" / "X2", par.parent / "par_LR_bicubic" / "X2")):
        assert _files(folder) == _files(other)
        for name in _files(folder):
            assert (folder / name).read_bytes() == (other / name).read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["crop=0"], "crop=0"),
        (["step=0"], "step=0"),
        (["step=64"], "step=64 must be between 1 and crop=48"),
        (["thresh=-1"], "thresh=-1"),
        (["thresh=24"], "smaller than step=24"),
        (["lr_scales=[1]"], "integer >= 2"),
        (["lr_scales=[x]"], "list of integers"),
        (["crop=abc"], "crop must be an integer"),
        (["verify=maybe"], "verify must be true or false"),
        (["subimages=false"], "give lr_scales"),
        (["crops=480"], "unknown config key 'crops'"),
        (["nokeyvalue"], "is not key=value"),
        (["compress=12"], "compress=12"),
    ],
)
def test_bad_settings_are_clear_errors(hr_dir, tmp_path, args, message, capsys):
    base = {"input": str(hr_dir), "output": str(tmp_path / "o"), "crop": "48", "step": "24", "thresh": "8"}
    extra = dict(a.split("=", 1) for a in args if "=" in a)
    argv = [f"{k}={v}" for k, v in {**base, **extra}.items()] + [a for a in args if "=" not in a]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "progress=false"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err
    if args == ["crops=480"]:
        assert "Did you mean 'crop'?" in err


def test_missing_empty_and_mismatched_folders(hr_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="folder not found"):
        prepare(_cfg(tmp_path / "nowhere", tmp_path / "o"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(FileNotFoundError, match="no image files"):
        prepare(_cfg(tmp_path / "empty", tmp_path / "o"))
    with pytest.raises(ConfigError, match="input=<folder"):
        prepare(parse_args(["output=x"]))
    with pytest.raises(ConfigError, match="different folder"):
        prepare(_cfg(hr_dir, hr_dir))
    out = tmp_path / "sub"
    (tmp_path / "one_dir").mkdir()
    Image.fromarray(_rgb(60, 60, 9)).save(tmp_path / "one_dir" / "one.png")
    prepare(_cfg(tmp_path / "one_dir", out))
    with pytest.raises(ConfigError, match="was prepared with .*crop=48 step=24 thresh=8.*crop=40"):
        prepare(_cfg(tmp_path / "one_dir", out, crop=40))


# -------------------------------------------------------------------------------------------------------------
def test_datamodules_read_prepared_folders(hr_dir, prepared, tmp_path):
    out, lr_root, _ = prepared
    torch.manual_seed(0)
    dm = FolderDataModule(
        train_dirs=[str(out)], val_dirs=[str(hr_dir)], scale=4, degradation=BicubicDegradation(4),
        patch_size=32, batch_size=4, num_workers=0, cache=False,
    )  # fmt: skip
    dm.setup("fit")
    assert len(dm.train_set) == 45
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch.hr.shape == (4, 3, 32, 32) and batch.lr.shape == (4, 3, 8, 8)

    # paired training on the sub-images' X4 folder; validation on whole images paired with whole-image LR
    whole_lr = tmp_path / "whole_LR"
    val_hr = tmp_path / "val_hr"
    val_hr.mkdir()
    for name in ("a.png", "b.png"):
        (val_hr / name).write_bytes((hr_dir / name).read_bytes())
    prepare(_cfg(val_hr, whole_lr, subimages=False, lr_scales=[4]))
    dm = PairedFolderDataModule(
        train_lr_dir=str(lr_root / "X4"), train_hr_dir=str(out), val_lr_dir=str(whole_lr / "X4"),
        val_hr_dir=str(val_hr), scale=4, patch_size=32, batch_size=4, num_workers=0, cache=True,
    )  # fmt: skip
    dm.setup("fit")
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    hr, lr = batch.hr, batch.lr
    assert hr.shape == (4, 3, 32, 32) and lr.shape == (4, 3, 8, 8)
    # the LR patch is the bicubic downscale of its HR patch (away from the patch border, where the kernel
    # reaches outside the patch)
    diff = (imresize(hr.double(), 0.25) - lr.double())[..., 2:-2, 2:-2].abs().max()
    assert diff <= 1.01 / 255
    val = dm.val_set[0]
    assert val["hr"].shape == (3, 100, 128) and val["lr"].shape == (3, 25, 32)


def test_command_line_errors_and_help(hr_dir, tmp_path):
    """The real command line: a misspelled key is one ``error:`` line naming the closest key (exit 2, before
    anything is written); ``--help`` lists every key of conf/prepare.yaml with its default."""
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "src.prepare", f"input={hr_dir}", f"output={tmp_path / 'o'}",
                           "crops=48"], cwd=CONF.parent, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: unknown config key 'crops'") and "Did you mean 'crop'?" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "o").exists()
    proc = subprocess.run([sys.executable, "-m", "src.prepare", "--help"], cwd=CONF.parent, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for key in ("input", "output", "crop: 480", "step: 240", "thresh: 48", "lr_scales: []", "workers: 2", "verify"):
        assert key in proc.stdout, key
