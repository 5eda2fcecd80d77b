"""What a user reads on the console (issue 12, item 12): the default run prints each line once, no warning from our
code or an avoidable setting, no terminal codes when piped, a step/ETA progress line; evaluate shows progress;
the run summary lists only files that exist; bash completion works for ``python -m src.train``."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def test_default_run_console(tmp_path):
    """``make train`` with a tiny budget, piped: the default loggers (W&B offline + CSV), progress bar, summary."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    for key in ("WANDB_SILENT", "WANDB_API_KEY", "SRSUITE_TRACEBACK"):
        env.pop(key, None)
    proc = subprocess.run([sys.executable, "-m", "src.train", "trainer.max_steps=20", "trainer.val_check_interval=10",
                           f"hydra.run.dir={tmp_path}"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    lines = [line for line in out.splitlines() if line.strip() and not set(line) <= set("|-")]
    # Hydra's log lines carry a timestamp: compare what follows it
    texts = [re.sub(r"^\[[\d\- :,]+\]", "", line) for line in lines]
    repeated = [t for t, n in Counter(texts).items() if n > 1]
    assert not repeated, repeated
    for noise in ("Warning", "warn(", "litlogger", "anonymous", "\x1b[", "Total FLOPs: 0", "Epoch ", "/-2",
                  "smaller than the logging interval", "not writable"):
        assert noise not in out, (noise, out[-4000:])
    assert re.search(r"^step 20/20 \(100%\)  elapsed \d+:\d\d:\d\d  eta 0:00:00", out, re.M), out[-3000:]
    assert re.search(r"^step 2/20 \(10%\)  elapsed .* eta \d+:\d\d:\d\d", out, re.M)
    assert re.search(r"GFLOPs per 64x64 LR image", out)
    # the summary names only files that exist
    listed = re.search(r"^  checkpoints/: (.*?)( \(|$)", out, re.M).group(1).split(", ")
    assert "last.ckpt" in listed and all((tmp_path / "checkpoints" / name).is_file() for name in listed)
    sync = re.search(r"upload with: wandb sync (\S+)", out).group(1)
    assert Path(sync).is_dir()


def test_run_folder_summary_lists_only_existing_files(tmp_path):
    from src.training.run import run_folder_summary

    (tmp_path / "results.csv").write_text("method\n")
    text = run_folder_summary(tmp_path)  # e.g. after fast_dev_run: no checkpoint, no comparison.png
    assert "results.csv" in text and "best.ckpt" not in text and "comparison.png" not in text
    assert "checkpoints" not in text
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert "checkpoints/: last.ckpt" in run_folder_summary(tmp_path)


def test_training_images_load_without_warnings():
    from src.data.datasets import load_uint8_rgb

    path = REPO / "benchmarks" / "Set5" / "HR" / "baby.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = load_uint8_rgb(path)
    img[0, 0, 0] = 7  # a writable tensor
    assert img.dtype == torch.uint8 and img.shape[0] == 3


def test_evaluate_reports_progress_per_set(caplog):
    from src.evaluation.benchmark import BenchmarkImage, score_set

    hr = torch.rand(3, 32, 32)
    images = [BenchmarkImage(f"{i}.png", hr, hr[:, ::2, ::2].contiguous(), "generated") for i in range(3)]
    with caplog.at_level(logging.INFO, logger="src.evaluation.benchmark"):
        scores, _ = score_set(lambda x: torch.nn.functional.interpolate(x, scale_factor=2), images, "nearest",
                              "Tiny", 2, progress=True)
    assert len(scores) == 3
    assert re.search(r"nearest Tiny x2: 3 images in \d+\.\d s", caplog.text)


def test_bash_completion_for_python_dash_m(tmp_path):
    from src.config.completion import handle_shell_completion, query_line

    assert query_line("/x/.venv/bin/python -X dev -m src.train model=", "src.train") == "python src/train.py model="
    script = subprocess.run([sys.executable, "-m", "src.train", "-sc", "install=bash"], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert script.returncode == 0 and "_srsuite_complete" in script.stdout
    line = f"{sys.executable} -m src.train data.patch_si"
    bash = (f'{script.stdout}\nCOMP_LINE="{line}"; COMP_POINT={len(line)}; COMP_WORDS=({line}); COMP_CWORD=3\n'
            '_srsuite_complete; echo "REPLY: ${COMPREPLY[*]}"')
    proc = subprocess.run(["bash", "-c", bash], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert "REPLY: data.patch_size=" in proc.stdout, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    os.environ.pop("COMP_LINE", None)
    handle_shell_completion("src.train", ["model=espcn"])  # no completion flag: nothing happens
