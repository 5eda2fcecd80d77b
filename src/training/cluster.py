"""Sweeps and clusters around one training run: SLURM resources and requeue (resume from the run folder's
``last.ckpt``), and the objective that Hydra's sweepers (Optuna) read from the run."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from src.config.validation import ConfigError
from src.training.callbacks import ObjectiveTracker

log = logging.getLogger(__name__)


def is_requeued_job() -> bool:
    """True in a SLURM job that was requeued (preempted, or timed out and requeued by submitit): SLURM sets
    ``SLURM_RESTART_COUNT`` to the number of restarts (submitit's requeue is ``scontrol requeue``, counted there
    too; submitit leaves no marker of its own)."""
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT", "0")) > 0
    except ValueError:
        return False


def requeue_resume_path(run_folder: Path) -> Path | None:
    """The checkpoint a requeued job continues from: ``<run_folder>/checkpoints/last.ckpt`` when this process
    is a requeued job (:func:`is_requeued_job`; it keeps its run folder) and that file exists, else ``None``."""
    last = Path(run_folder) / "checkpoints" / "last.ckpt"
    return last if is_requeued_job() and last.is_file() else None


def slurm_trainer_resources(trainer_cfg: DictConfig, launcher_cfg: DictConfig | None) -> None:
    """Under ``hydra/launcher=slurm`` (submitit's SLURM launcher): ``trainer.num_nodes`` = ``hydra.launcher.nodes``
    and ``trainer.devices`` = ``hydra.launcher.tasks_per_node`` (one process per GPU; Lightning's SLURM
    environment reads the ranks). A different explicit ``trainer.num_nodes`` / ``devices`` is an error: the
    launcher's keys are the one place for the job's resources. No-op for other launchers."""
    if launcher_cfg is None or not str(launcher_cfg.get("_target_", "")).endswith("SlurmLauncher"):
        return
    nodes, tasks, gpus = int(launcher_cfg.nodes), int(launcher_cfg.tasks_per_node), launcher_cfg.get("gpus_per_node")
    if gpus and tasks != int(gpus):
        raise ConfigError(f"hydra.launcher.tasks_per_node={tasks} but gpus_per_node={gpus}: Lightning runs one "
                          "process per GPU (leave tasks_per_node at its default, ${.gpus_per_node})")
    for key, value, source in (("num_nodes", nodes, "nodes"), ("devices", tasks, "gpus_per_node")):
        current = trainer_cfg.get(key)
        if current not in (1, value):
            raise ConfigError(f"trainer.{key}={current} but hydra.launcher.{source}={value}: set the job's resources "
                              f"on the launcher (hydra.launcher.{source}=…)")
        trainer_cfg[key] = value


def hydra_launcher() -> DictConfig | None:
    try:
        return HydraConfig.get().launcher
    except ValueError:
        return None


def resume_from(cfg: DictConfig, out: Path) -> str | None:
    requeued = requeue_resume_path(out)
    if requeued is not None:
        log.info("requeued job (SLURM_RESTART_COUNT=%s): resuming from %s", os.environ.get("SLURM_RESTART_COUNT"),
                 requeued)
        return str(requeued)
    return cfg.ckpt_path


class TrialFailedError(RuntimeError):
    """A run without a usable objective (it diverged, or never validated). Raised only under the Optuna sweeper,
    which records the trial as failed (a returned ``nan`` would be stored as a completed trial)."""


def _under_optuna() -> bool:
    try:
        return "optuna" in str(HydraConfig.get().sweeper.get("_target_", "")).lower()
    except ValueError:
        return False


def check_objective(cfg: DictConfig) -> tuple[str, str]:
    """(metric, direction) of ``objective``; the metric must be one that validation computes."""
    from src.config.validation import objective_direction
    from src.metrics.suite import ALL_METRICS

    metric = str(cfg.objective)
    names = {"psnr_y", "ssim_y", *cfg.metrics.names}
    if metric not in ALL_METRICS:
        raise ConfigError(f"objective={metric!r}: expected a metric name, one of {', '.join(ALL_METRICS)}")
    if metric not in names:
        raise ConfigError(f"objective={metric!r} is not computed during validation: add it to metrics.names "
                          f"(now {sorted(names)})")
    return metric, objective_direction(metric)


def objective_value(tracker: ObjectiveTracker) -> float | None:
    """The best value of the tracked metric; ``None`` (with a warning) or, under the Optuna sweeper,
    :class:`TrialFailedError` when the run has no validation or its last validation is not finite."""
    last = tracker.last
    if last is not None and math.isfinite(last) and tracker.best is not None:
        return tracker.best
    reason = "no validation ran" if last is None else f"the last validation gave {last} (the run diverged)"
    message = f"objective {tracker.key}: {reason}"
    if _under_optuna():
        raise TrialFailedError(message)
    log.warning("%s; returning None", message)
    return None
