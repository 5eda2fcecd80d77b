"""Atomic writes: a failed or interrupted write never leaves a partial file under the final name, the old file
stays as it was; full or unwritable output folders are found before the work. Disk-full cases run on a real
1 MiB tmpfs when this machine lets the tests mount one (root), and on an injected ENOSPC otherwise."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.storage.atomic import TMP_MARK, OutputError, atomic_path, atomic_write, check_writable, write_text
from src.training.callbacks import AtomicCheckpointIO
from src.weights.checkpoints import export_basicsr

REPO = Path(__file__).resolve().parents[1]


def _temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if TMP_MARK in p.name]


@pytest.fixture
def tiny_fs(tmp_path):
    """A 1 MiB tmpfs (skipped where mounting is not allowed)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_error_while_writing_keeps_the_old_file(tmp_path):
    path = tmp_path / "results.csv"
    write_text(path, "old\n")
    with pytest.raises(RuntimeError, match="killed"), atomic_write(path, "w") as fh:
        fh.write("new, half written")
        raise RuntimeError("killed")
    assert path.read_text() == "old\n"
    assert _temp_files(tmp_path) == []


def test_atomic_path_fsyncs_the_file_and_folder_before_and_after_the_rename(tmp_path, monkeypatch):
    """For writers that take a file name (onnx.save, torch.jit.save): same suffix, old file kept on an error,
    the data fsynced before it takes the final name and the folder fsynced after."""
    path = tmp_path / "model.onnx"
    write_text(path, "old")
    with pytest.raises(RuntimeError, match="killed"), atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".onnx" and TMP_MARK in tmp.name
        tmp.write_text("half written")
        raise RuntimeError("killed")
    assert path.read_text() == "old" and _temp_files(tmp_path) == []
    events, real_fsync, real_replace = [], os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                 real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", str(b))), real_replace(a, b))[1])
    with atomic_path(path) as tmp:
        tmp.write_text("new")
    assert path.read_text() == "new" and _temp_files(tmp_path) == []
    assert events == [("fsync", str(tmp)), ("replace", str(path)), ("fsync", str(tmp_path))]
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    with pytest.raises(OutputError, match="model.onnx: No space left.*previous file is unchanged"), \
            atomic_path(path) as tmp:
        tmp.write_text("newer")
    assert path.read_text() == "new" and _temp_files(tmp_path) == []


def test_injected_disk_full_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1, "w": torch.ones(3)}, path)
    real_fsync = os.fsync

    def full(fd):  # the data did not fit: ENOSPC surfaces at flush/fsync time on many filesystems
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError, match=r"cannot write .*last\.ckpt: No space left on device \(the previous file "
                                          r"is unchanged\)"):
        io.save_checkpoint({"step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert io.load_checkpoint(path)["step"] == 1
    assert _temp_files(tmp_path) == []


def test_full_tmpfs_keeps_the_old_checkpoint_and_export(tiny_fs):
    io = AtomicCheckpointIO()
    small = {"w": torch.ones(1000)}
    io.save_checkpoint({"step": 1, "state_dict": small}, tiny_fs / "last.ckpt")
    export_basicsr(small, tiny_fs / "best_basicsr.pth")
    big = {"w": torch.ones(400_000)}  # 1.6 MB: more than the filesystem holds
    with pytest.raises(OutputError, match="No space left on device"):
        io.save_checkpoint({"step": 2, "state_dict": big}, tiny_fs / "last.ckpt")
    with pytest.raises(OutputError, match="No space left on device"):
        export_basicsr(big, tiny_fs / "best_basicsr.pth")
    assert io.load_checkpoint(tiny_fs / "last.ckpt")["step"] == 1
    assert torch.equal(torch.load(tiny_fs / "best_basicsr.pth", weights_only=True)["params"]["w"], small["w"])
    assert _temp_files(tiny_fs) == []


def test_check_writable_finds_a_full_or_read_only_folder(tiny_fs, tmp_path):
    with pytest.raises(OutputError, match=r"has .* free, but about 2\.0 MiB will be written there"):
        check_writable(tiny_fs, need_bytes=2 * 2**20)
    check_writable(tiny_fs, need_bytes=1000)
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
    with pytest.raises(OutputError, match="is not writable: Read-only file system"):
        check_writable(tiny_fs)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        check_writable(blocker)
    with pytest.raises(OutputError, match="sub cannot be created: Not a directory"):
        check_writable(blocker / "sub")


def test_upscale_refuses_a_full_output_folder_before_computing(tiny_fs, tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)).save(photo)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "src.upscale", f"input={photo}", f"output={tiny_fs}",
                           "model=bicubic", "scale=4", "progress=false", f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.startswith(f"error: output folder {tiny_fs} has "), proc.stderr[-3000:]
    assert "will be written there" in proc.stderr
    left = [p.name for p in tiny_fs.rglob("*") if p.suffix == ".png" or TMP_MARK in p.name or ".tmp" in p.name]
    assert left == []  # no image, nothing half written, no temporary file
