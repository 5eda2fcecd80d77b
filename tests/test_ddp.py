"""Data parallel on CPU processes (gloo): two torchrun "nodes" on localhost, exact validation means, and the same
loss curve for one process with batch 2B as for two processes with batch B."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.cli_helpers import cli_env, read_csv

REPO = Path(__file__).resolve().parents[1]
SMOKE = ("experiment=smoke", "trainer.enable_progress_bar=false", "logger=[csv]", "trainer.accelerator=cpu")


def _check(proc: subprocess.CompletedProcess | subprocess.Popen, out: str, err: str) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\nSTDOUT:\n{out[-3000:]}\nSTDERR:\n{err[-3000:]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.multinode
def test_torchrun_two_nodes_trains_logs_once_and_validates_each_image_once(tmp_path):
    """Two torchrun agents on this machine (one CPU process each) join one c10d rendezvous as two nodes. Three
    validation images over two processes: DistributedSampler pads rank 1 with a repeat of image 0, which must not
    enter the mean."""
    port = _free_port()
    args = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1", "--rdzv-backend=c10d",
            f"--rdzv-endpoint=localhost:{port}", "--rdzv-id=srsuite-test", "-m", "src.train", *SMOKE,
            "trainer.num_nodes=2", "trainer.devices=1", "strategy=ddp", "data.val_photos=[astronaut,coffee,color]",
            "data.val_limit=null", "data.repeat=2", f"hydra.run.dir={tmp_path}"]
    nodes = [subprocess.Popen(args, cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for node in nodes:
        out, err = node.communicate(timeout=600)
        _check(node, out, err)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.ckpt", "best_basicsr.pth",
                                                                            "last.ckpt"]
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["global_step"] == 4
    metrics = read_csv(tmp_path / "csv" / "metrics.csv")
    assert [r["step"] for r in metrics if r["train/mse"]] == ["0", "1", "2", "3"]  # logged once (rank 0)
    (val,) = [r for r in metrics if r["val/sample/psnr_y"]]
    # the validation at step 4 is the weights of best.ckpt, which the final report scores on one process
    per_image = [r for r in read_csv(tmp_path / "per_image.csv") if r["method"] == "espcn"]
    assert sorted(r["image"] for r in per_image) == ["astronaut.png", "coffee.png", "color.png"]
    mean = sum(float(r["psnr_y"]) for r in per_image) / 3
    assert val["step"] == "4" and abs(float(val["val/sample/psnr_y"]) - mean) < 1e-3


def test_one_process_batch_2b_equals_two_processes_batch_b(tmp_path):
    """Same seed, ESPCN, bicubic degradation: one process with batch 8 and two DDP processes with batch 4 see the
    same patches at every step (one DistributedSampler order, per-item crops) and average the same gradients:
    the loss curves agree."""
    common = (*SMOKE, "data.repeat=8", "trainer.max_steps=6", "trainer.val_check_interval=6", "report.enabled=false")
    single = subprocess.run([sys.executable, "-m", "src.train", *common, "data.batch_size=8",
                             f"hydra.run.dir={tmp_path / 'one'}"], cwd=REPO, env=cli_env(), capture_output=True,
                            text=True, timeout=600)
    _check(single, single.stdout, single.stderr)
    ddp = subprocess.run([sys.executable, "-m", "src.train", *common, "data.batch_size=4", "trainer.devices=2",
                          "strategy=ddp", f"hydra.run.dir={tmp_path / 'two'}"], cwd=REPO, env=cli_env(),
                         capture_output=True, text=True, timeout=600)
    _check(ddp, ddp.stdout, ddp.stderr)
    curves = []
    for run in ("one", "two"):
        rows = read_csv(tmp_path / run / "csv" / "metrics.csv")
        curves.append([float(r["train/mse"]) for r in rows if r["train/mse"]])
    assert len(curves[0]) == len(curves[1]) == 6
    assert curves[0] == pytest.approx(curves[1], rel=1e-4)
    assert curves[0][0] != pytest.approx(curves[0][-1], rel=1e-2)  # it trained
