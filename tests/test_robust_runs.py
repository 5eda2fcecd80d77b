"""Nothing lost, nothing silent: last.ckpt after kills and plateaus, one folder per run, the divergence guard,
batch size vs training set, and LR schedules extended on resume. Kill tests run `python -m src.train` as a
subprocess and send it real signals."""

from __future__ import annotations

import csv
import logging
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from src.config.validation import new_run_dir
from src.data.batch import SRBatch
from src.methods import AdversarialSR, SupervisedSR
from src.methods.guard import DivergenceError
from src.storage.atomic import TMP_MARK
from src.training.callbacks import AtomicCheckpointIO, BestCheckpoint, LastCheckpoint

REPO = Path(__file__).resolve().parents[1]
SMOKE = ("experiment=smoke", "trainer.enable_progress_bar=false")
ADAM = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}
COSINE = {"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR", "_partial_": True, "T_max": 4, "eta_min": 1e-5}


def _env() -> dict[str, str]:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    env.pop("WANDB_API_KEY", None)
    return env


def _train(*overrides: str, cwd: Path = REPO, **popen) -> subprocess.Popen:
    env = _env()
    env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen([sys.executable, "-m", "src.train", *overrides], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _no_temp_files(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if TMP_MARK in p.name]


# ---- 1. last.ckpt: on SIGTERM / SIGINT, and after a plateau --------------------------------------------------
def _logged_steps(metrics: Path) -> int:
    if not metrics.is_file():
        return -1
    with metrics.open() as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh) if r.get("train/mse")]
    return max(steps, default=-1)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_saves_last_checkpoint_at_the_step_reached(sig, code, tmp_path):
    # no validation and no periodic save before 100000 steps: last.ckpt can only come from the signal
    proc = _train(*SMOKE, "trainer.max_steps=100000", "trainer.val_check_interval=100000",
                  "checkpoint.every_n_train_steps=100000", "+logger.csv.flush_logs_every_n_steps=1",
                  f"hydra.run.dir={tmp_path}",
                  preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    try:
        deadline = time.monotonic() + 240
        while _logged_steps(tmp_path / "csv" / "metrics.csv") < 3:
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        seen = _logged_steps(tmp_path / "csv" / "metrics.csv")
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, out[-3000:]
    match = re.search(r"stopped by (SIG\w+) at step (\d+): \S+last\.ckpt holds step (\d+)", out)
    assert match, out[-3000:]
    assert match.group(1) == sig.name and match.group(2) == match.group(3)
    ckpt = _load(tmp_path / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == int(match.group(2)) >= seen >= 3
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert "Held-out PSNR" not in out  # no report on an interrupted run
    _no_temp_files(tmp_path / "checkpoints")


def test_plateau_keeps_last_checkpoint_at_the_final_step(tmp_path):
    # lr=1e-30 (no schedule): Adam moves each weight by ~1e-30, below float32 resolution, so the weights never
    # change and validation PSNR never improves after step 2
    proc = _train(*SMOKE, "trainer.max_steps=6", "trainer.val_check_interval=2", "model.optimizer.lr=1e-30",
                  "model.lr_scheduler=null", "report.enabled=false", f"hydra.run.dir={tmp_path}")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    assert _load(tmp_path / "checkpoints" / "best.ckpt")["global_step"] == 2
    assert _load(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 6


# ---- 2. one folder per run --------------------------------------------------------------------------------------
def test_two_runs_started_together_get_their_own_folders(tmp_path):
    # model=bicubic creates its run folder and returns: two processes race for one run name
    procs = [_train("model=bicubic", "hydra.run.dir=${sr.new_dir:outputs/same}", cwd=tmp_path) for _ in range(2)]
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-3000:]
    folders = sorted(p.name for p in (tmp_path / "outputs").iterdir())
    assert folders == ["same", "same_1"]
    for name in folders:
        assert (tmp_path / "outputs" / name / ".hydra" / "config.yaml").is_file()


def test_new_run_dir_is_unique_under_threads_and_kept_for_a_requeued_slurm_job(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    base = str(tmp_path / "runs" / "a")
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(new_run_dir(base))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted([base] + [f"{base}_{i}" for i in range(1, 8)])
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert new_run_dir(base) == base  # the requeued job resumes in its own folder
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    assert new_run_dir(base) == f"{base}_8"


# ---- 3. divergence guard -----------------------------------------------------------------------------------------
def _espcn(**kwargs) -> SupervisedSR:
    arch = {"_target_": "src.archs.ESPCN", "num_in_ch": 3, "num_out_ch": 3, "upscale": 2, "num_feat": 4}
    defaults = dict(name="espcn", arch=arch, scale=2, loss="mse", optimizer=ADAM)
    return SupervisedSR(**{**defaults, **kwargs})


def _batches(n: int, bad: set[int]) -> list[SRBatch]:
    """n (lr, hr) batches of 2 x 3 x 8 x 8 LR; the HR of the indices in ``bad`` holds a NaN."""
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        hr = torch.rand(2, 3, 16, 16, generator=g)
        if i in bad:
            hr[0, 0, 0, 0] = float("nan")
        out.append(SRBatch(lr=torch.nn.functional.avg_pool2d(hr.nan_to_num(), 2), hr=hr, training=True))
    return out


class WeightLog(L.Callback):
    def __init__(self) -> None:
        self.weights: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.weights.append(torch.cat([p.detach().flatten().clone() for p in pl_module.net.parameters()]))


def _trainer(tmp_path, max_steps: int, *callbacks) -> L.Trainer:
    return L.Trainer(max_steps=max_steps, accelerator="cpu", logger=False, enable_progress_bar=False,
                     enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                     default_root_dir=tmp_path, plugins=[AtomicCheckpointIO()], callbacks=list(callbacks))


def test_nan_loss_skips_the_update(tmp_path, caplog):
    method = _espcn(lr_scheduler=COSINE)
    weights = WeightLog()
    trainer = _trainer(tmp_path, 4, weights)
    with caplog.at_level(logging.WARNING, logger="src.methods.guard"):
        trainer.fit(method, train_dataloaders=DataLoader(_batches(4, bad={2}), batch_size=None))
    w = weights.weights
    assert trainer.global_step == 4 and len(w) == 4  # the skipped step counts (global_step and LR schedule)
    assert torch.equal(w[2], w[1])  # the NaN batch changed nothing
    assert not torch.equal(w[1], w[0]) and not torch.equal(w[3], w[2])
    assert torch.isfinite(w[-1]).all()
    assert trainer.lr_scheduler_configs[0].scheduler.last_epoch == 4
    assert method.nonfinite_guard.skipped == 1
    assert "step 2: non-finite loss (loss=nan): step skipped, weights not updated (1/20 in a row)" in caplog.text


def test_nan_losses_in_a_row_stop_and_keep_the_last_finite_checkpoint(tmp_path):
    method = _espcn(guard={"max_nonfinite_steps": 3})
    weights = WeightLog()
    last = LastCheckpoint(tmp_path, every_n_train_steps=1)
    trainer = _trainer(tmp_path, 100, last, weights)
    with pytest.raises(DivergenceError, match="3 non-finite losses in a row at step 4"):
        trainer.fit(method, train_dataloaders=DataLoader(_batches(8, bad={2, 3, 4, 5, 6, 7}), batch_size=None))
    assert len(weights.weights) == 4  # batches 0-3 ended, batch 4 raised
    ckpt = _load(tmp_path / "last.ckpt")
    assert ckpt["global_step"] == 4 and last.saved_step == 4
    saved = torch.cat([v.flatten() for k, v in ckpt["state_dict"].items() if k.startswith("sr.net.")])
    assert torch.equal(saved, weights.weights[1])  # the weights of the last finite step, untouched since
    _no_temp_files(tmp_path)


def test_diverging_learning_rate_stops_with_an_error_and_exports_nothing(tmp_path):
    # SRCNN (ReLU, no saturation) at lr=1e6 overflows to inf within a few steps
    proc = _train(*SMOKE, "model=srcnn", "model.optimizer.lr=1e6", "trainer.max_steps=60",
                  "trainer.val_check_interval=2", "guard.max_nonfinite_steps=3", f"hydra.run.dir={tmp_path}")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2, out[-3000:]
    error = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "training diverged: 3 non-finite losses in a row" in error[0], out[-3000:]
    assert "Traceback" not in out
    step = _load(tmp_path / "checkpoints" / "last.ckpt")["global_step"]
    assert f"last.ckpt (step {step})" in error[0]
    for name in ("last.ckpt", "best.ckpt"):
        state = _load(tmp_path / "checkpoints" / name)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values()), name
    assert not (tmp_path / "checkpoints" / "best_basicsr.pth").exists()


def test_a_network_with_overflowing_output_is_not_exported():
    from src.training.run import _output_finite

    method = _espcn().eval()
    item = {"hr": torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8),
            "lr": torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)}
    assert _output_finite(method, item, None)
    with torch.no_grad():
        for p in method.net.parameters():
            p.fill_(1e38)  # finite weights whose sums overflow float32: what a huge lr leaves behind
    assert all(torch.isfinite(p).all() for p in method.net.parameters())
    assert not _output_finite(method, item, None)


def test_non_finite_validation_score_never_becomes_best(tmp_path):
    best = BestCheckpoint(dirpath=tmp_path, filename="best", monitor="val/psnr", mode="max")
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    for value in (float("nan"), float("inf"), float("-inf")):
        assert not best.check_monitor_top_k(trainer, torch.tensor(value))
    assert best.check_monitor_top_k(trainer, torch.tensor(12.0))


def _gan(**kwargs) -> AdversarialSR:
    arch = {"_target_": "src.archs.MSRResNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 4, "num_block": 1,
            "upscale": 2}
    disc = {"_target_": "src.archs.VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": 4, "input_size": 32}
    return AdversarialSR(name="gan", arch=arch, scale=2, loss={"pixel": {"_target_": "src.losses.PixelLoss",
                         "criterion": "l1"}}, optimizer=ADAM, optimizer_d=ADAM, discriminator=disc,
                         gan={"type": "vanilla", "loss_weight": 0.1}, **kwargs)


def _gan_batches(n: int, bad: set[int]) -> list[SRBatch]:
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        hr = torch.rand(2, 3, 32, 32, generator=g)
        lr = torch.nn.functional.avg_pool2d(hr, 2)
        if i in bad:
            lr[0, 0, 0, 0] = float("inf")
        out.append(SRBatch(lr=lr, hr=hr, training=True))
    return out


def test_gan_nan_skips_the_iteration_then_stops(tmp_path):
    method = _gan(guard={"max_nonfinite_steps": 2})
    weights = WeightLog()
    trainer = _trainer(tmp_path, 100, LastCheckpoint(tmp_path, every_n_train_steps=1), weights)
    with pytest.raises(DivergenceError, match="2 non-finite losses in a row at step 3"):
        trainer.fit(method, train_dataloaders=DataLoader(_gan_batches(6, bad={2, 4, 5}), batch_size=None))
    assert method.nonfinite_guard.skipped == 3  # batch 2 skipped, batch 3 trained, batches 4 and 5 stop it
    g = weights.weights
    assert torch.equal(g[2], g[1]) and not torch.equal(g[3], g[2]) and torch.equal(g[4], g[3])
    ckpt = _load(tmp_path / "last.ckpt")
    assert ckpt["global_step"] == 3  # skipped iterations do not count
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


def test_gan_collapse_is_warned(tmp_path, caplog):
    # a floor no discriminator loss reaches from above: every window counts as "D wins"
    method = _gan(guard={"window": 2, "d_loss_floor": 1e6, "loss_growth": 1e-9})
    trainer = _trainer(tmp_path, 6)
    with caplog.at_level(logging.WARNING, logger="src.methods.guard"):
        trainer.fit(method, train_dataloaders=DataLoader(_gan_batches(6, bad=set()), batch_size=None))
    warned = method.collapse_monitor.warnings
    assert any("the discriminator's loss averaged" in w for w in warned)
    assert any("G loss exploding" in w for w in warned)
    assert len([w for w in warned if "discriminator" in w]) == 1  # warned when it starts, not every window
    assert "GAN collapse?" in caplog.text


# ---- 4. batch size vs training set ------------------------------------------------------------------------------
def test_batch_larger_than_training_set_is_an_error_before_training(tmp_path):
    proc = _train(*SMOKE, "data.batch_size=64", f"hydra.run.dir={tmp_path}")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2, out[-3000:]
    error = [line for line in out.splitlines() if line.startswith("error: ")]
    assert error == ["error: data.batch_size=64 is larger than the training set: 7 training images x data.repeat=1 "
                     "= 7 patches per epoch, so no full batch can be formed. Lower data.batch_size or raise "
                     "data.repeat"], out[-3000:]
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


# ---- 6. resuming with a larger max_steps -----------------------------------------------------------------------
def test_resume_with_more_steps_extends_the_cosine_without_a_jump(tmp_path, caplog):
    data = _batches(12, bad=set())
    first = _espcn(lr_scheduler=COSINE)  # T_max = 4
    last = LastCheckpoint(tmp_path, every_n_train_steps=2)
    _trainer(tmp_path, 2, last).fit(first, train_dataloaders=DataLoader(data, batch_size=None))
    lr_at_2 = first.optimizers().param_groups[0]["lr"]
    assert lr_at_2 == pytest.approx(1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi * 2 / 4)) / 2)

    resumed = _espcn(lr_scheduler={**COSINE, "T_max": 8})  # trainer.max_steps 4 -> 8
    trainer = _trainer(tmp_path / "resume", 3)
    with caplog.at_level(logging.WARNING, logger="src.methods.resume"):
        trainer.fit(resumed, train_dataloaders=DataLoader(data, batch_size=None), ckpt_path=last.path)
    assert "model.lr_scheduler.T_max 4 -> 8" in caplog.text
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.T_max == 8
    # one step after the resume: the new cosine's shape, continuing from the rate reached (no jump)
    expected = 1e-5 + (lr_at_2 - 1e-5) * (1 + math.cos(math.pi * 3 / 8)) / (1 + math.cos(math.pi * 2 / 8))
    assert resumed.optimizers().param_groups[0]["lr"] == pytest.approx(expected, rel=1e-9)
    assert expected < lr_at_2


def test_resume_with_another_scheduler_is_refused(tmp_path):
    data = _batches(4, bad=set())
    last = LastCheckpoint(tmp_path, every_n_train_steps=2)
    _trainer(tmp_path, 2, last).fit(_espcn(lr_scheduler=COSINE), train_dataloaders=DataLoader(data, batch_size=None))
    step = {"_target_": "torch.optim.lr_scheduler.StepLR", "_partial_": True, "step_size": 2}
    with pytest.raises(ValueError, match="cannot resume: model.lr_scheduler is torch.optim.lr_scheduler.StepLR"):
        _trainer(tmp_path / "resume", 4).fit(_espcn(lr_scheduler=step), train_dataloaders=DataLoader(
            data, batch_size=None), ckpt_path=last.path)
