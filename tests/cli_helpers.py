"""Running the entry points as a user does (``python -m src.<name> …`` in a subprocess) and reading what they write;
shared by the CLI tests."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMOKE = ("experiment=smoke", "trainer.enable_progress_bar=false")


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI run: W&B offline and silent, no API key, one intra-op thread (on a 2-core machine a
    second busy process makes 2-thread torch ops crawl), no ``SRSUITE_TRACEBACK``; ``extra`` on top."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1", **extra}
    env.pop("WANDB_API_KEY", None)
    if "SRSUITE_TRACEBACK" not in extra:
        env.pop("SRSUITE_TRACEBACK", None)
    return env


def run_cli(module: str, *overrides: str, run_dir: Path | None = None, timeout: int = 600, cwd: Path = REPO,
            **env_extra: str) -> subprocess.CompletedProcess:
    """``python -m <module> <overrides> [hydra.run.dir=<run_dir>]`` in ``cwd``, output captured as text."""
    args = [sys.executable, "-m", module, *overrides] + ([f"hydra.run.dir={run_dir}"] if run_dir is not None else [])
    return subprocess.run(args, cwd=cwd, env=cli_env(**env_extra), capture_output=True, text=True, timeout=timeout)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """``proc`` if it exited 0; else a failure showing the end of its output."""
    tail = f"STDOUT:\n{proc.stdout[-3000:]}\nSTDERR:\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"exit {proc.returncode}\n{tail}"
    return proc


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file written by the suite, as ``{column: text}``."""
    with path.open() as fh:
        return list(csv.DictReader(fh))
