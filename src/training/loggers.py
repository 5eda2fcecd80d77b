"""Logger construction that needs more than a ``_target_``: W&B's offline-unless-configured default, and one
W&B run per Hydra job (name, group, job type and tags from the job; the previous job's run finished first)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from lightning.pytorch.loggers import WandbLogger

from src.evaluation.wandb_logs import wandb_is_configured

log = logging.getLogger(__name__)
WANDB_MODES = ("auto", "online", "offline", "disabled")
TAG_GROUPS = ("model", "data", "degradation", "loss", "experiment", "hparams_search")  # become W&B run tags


def resolve_wandb_mode(mode: str) -> str:
    """``auto`` -> ``online`` if :func:`wandb_is_configured` else ``offline``; an explicit WANDB_MODE of
    offline/disabled wins over ``auto``."""
    if mode not in WANDB_MODES:
        raise ValueError(f"logger.wandb.mode={mode!r}: expected one of {WANDB_MODES}")
    if mode != "auto":
        return mode
    env = os.environ.get("WANDB_MODE", "").lower()
    if env in ("offline", "disabled", "dryrun"):
        return "offline" if env == "dryrun" else env
    return "online" if wandb_is_configured() else "offline"


def wandb_logger(
    project: str,
    name: str,
    save_dir: str,
    mode: str = "auto",
    entity: str | None = None,
    group: str | None = None,
    tags: list[str] | None = None,
    log_model: bool = False,
    job_type: str = "train",
) -> WandbLogger:
    """Lightning's WandbLogger, offline unless W&B is configured for this user (see ``resolve_wandb_mode``), for a
    new W&B run of this job.

    In a Hydra multirun the run is named ``<name>-<job number>`` and, unless ``group`` is given, grouped by the
    sweep (the multirun folder's name); the chosen config groups become tags (``model:espcn``, ``data:sample``
    …) after the given ``tags``. A W&B run still open in this process (an earlier job of the sweep) is
    finished first (``_start_run``): Lightning's WandbLogger would otherwise log into it."""
    resolved = resolve_wandb_mode(mode)
    log.info("W&B mode: %s%s", resolved, " (sync later with `wandb sync`)" if resolved == "offline" else "")
    job = hydra_job()
    if job.num is not None:
        name = f"{name}-{job.num}"
        group = group or job.sweep
    init = {"project": project, "name": name, "dir": save_dir, "mode": resolved, "entity": entity, "group": group,
            "job_type": job_type, "tags": list(dict.fromkeys([*(tags or []), *job.tags]))}
    return WandbLogger(
        **{k: v for k, v in init.items() if k not in ("dir", "mode")},
        save_dir=save_dir,
        mode=resolved,
        offline=resolved == "offline",
        log_model=log_model,
        experiment=_start_run(init),
    )


def _start_run(init: dict):
    """The W&B run of this process when it is rank 0 (other ranks: ``None``, Lightning gives them a dummy).

    Started here rather than by Lightning because Lightning passes W&B's deprecated ``anonymous`` setting, which
    prints a warning on every run; the x-axis definitions are Lightning's."""
    from lightning.pytorch.utilities import rank_zero_only

    if getattr(rank_zero_only, "rank", 0) != 0:
        return None
    import wandb

    if wandb.run is not None:  # a run left open by an earlier job of this process (multirun)
        wandb.run.finish()
    # quiet: no run-history block and no ANSI-coloured footer in the console; src.train prints the sync command
    run = wandb.init(**init, resume="allow", settings=wandb.Settings(quiet=True))
    run.define_metric("trainer/global_step")
    run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
    if init.get("mode") == "online":
        log.info("W&B run: %s", run.url)  # quiet mode does not print the link
    return run


def finish_wandb(loggers: list, exit_code: int = 0) -> None:
    """Close the W&B runs of ``loggers`` (writes W&B's summary now instead of at interpreter exit; one run per job:
    the next job of a multirun starts its own). ``exit_code`` 1 marks the run failed."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            experiment = logger.experiment
            if hasattr(experiment, "finish"):
                experiment.finish(exit_code=exit_code)


@dataclass
class HydraJob:
    """What a logger needs to know about the Hydra job it runs in."""

    num: int | None = None  # job number in a multirun; None for a single run
    sweep: str | None = None  # the multirun folder's name
    tags: list[str] = field(default_factory=list)  # "<group>:<option>" of the chosen config groups


def hydra_job() -> HydraJob:
    """The current Hydra job (an empty :class:`HydraJob` outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return HydraJob()
    hydra = HydraConfig.get()
    choices = hydra.runtime.choices
    tags = [f"{g}:{choices[g]}" for g in TAG_GROUPS if choices.get(g) not in (None, "null")]
    if hydra.mode != RunMode.MULTIRUN:
        return HydraJob(tags=tags)
    return HydraJob(int(hydra.job.num), Path(str(hydra.sweep.dir)).name, tags)
