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
    return WandbLogger(
        project=project,
        name=name,
        save_dir=save_dir,
        mode=resolved,
        offline=resolved == "offline",
        entity=entity,
        group=group,
        tags=list(tags or []),
        log_model=log_model,
    )
