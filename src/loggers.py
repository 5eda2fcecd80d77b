"""Logger construction that needs more than a ``_target_``: W&B's offline-unless-configured default."""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path

from lightning.pytorch.loggers import WandbLogger

log = logging.getLogger(__name__)
WANDB_MODES = ("auto", "online", "offline", "disabled")


def wandb_is_configured() -> bool:
    """True when the user set W&B up for uploading: WANDB_MODE=online, WANDB_API_KEY, or `wandb login`."""
    if os.environ.get("WANDB_MODE", "").lower() == "online" or os.environ.get("WANDB_API_KEY"):
        return True
    netrc_path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        auth = netrc.netrc(netrc_path).authenticators("api.wandb.ai")
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return auth is not None


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
) -> WandbLogger:
    """Lightning's WandbLogger, offline unless W&B is configured for this user (see ``resolve_wandb_mode``)."""
    resolved = resolve_wandb_mode(mode)
    log.info("W&B mode: %s%s", resolved, " (sync later with `wandb sync`)" if resolved == "offline" else "")
    init = {"project": project, "name": name, "dir": save_dir, "mode": resolved, "entity": entity, "group": group,
            "tags": list(tags or [])}
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
    return run


def finish_wandb(loggers: list) -> None:
    """Close the W&B runs of ``loggers`` (writes W&B's summary now instead of at interpreter exit)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            experiment = logger.experiment
            if hasattr(experiment, "finish"):
                experiment.finish()
