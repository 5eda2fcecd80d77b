"""Stopping ``src.prepare`` (SIGTERM as SLURM preemption or ``kill`` sends it, SIGINT as Ctrl-C sent to the
parent only) leaves no worker process behind (issue 12, item 11)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def children(pid: int) -> set[int]:
    """PIDs whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_no_orphan_workers_after_the_parent_is_stopped(tmp_path, signum):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)).save(src / f"{i:02d}.png")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "src.prepare", f"input={src}", f"output={tmp_path / 'out'}",
                             "crop=64", "step=32", "thresh=0", "lr_scales=[2,3,4]", "workers=2"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        workers: set[int] = set()
        deadline = time.time() + 120
        while time.time() < deadline and len(workers) < 2:  # wait until both workers run
            workers = {p for p in children(proc.pid) if "src" in Path(f"/proc/{p}/cmdline").read_text()
                       or "multiprocessing" in Path(f"/proc/{p}/cmdline").read_text()}
            time.sleep(0.2)
        workers |= children(proc.pid)
        assert len(workers) >= 2 and proc.poll() is None, "the workers did not start"
        time.sleep(1.0)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "rerun the same command to resume" in err and "Traceback" not in err
    deadline = time.time() + 10
    while time.time() < deadline and any(alive(p) for p in workers):
        time.sleep(0.2)
    assert not [p for p in workers if alive(p)], "worker processes outlived the parent"
