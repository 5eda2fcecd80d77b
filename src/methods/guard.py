"""Divergence guard for training: non-finite losses skip their step, a run of them stops training; an exploding
(finite) loss and GAN collapse signals are warned about.

The ``guard`` block of ``conf/train.yaml`` configures it (:data:`GUARD_DEFAULTS` lists the keys). Decisions are
taken identically on every process (``Strategy.reduce_boolean_decision``), so DDP ranks skip or stop together.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import torch

log = logging.getLogger(__name__)

GUARD_DEFAULTS: dict[str, Any] = {
    "max_nonfinite_steps": 20,  # this many non-finite losses in a row stop the run
    "window": 100,  # steps averaged for the warnings below (one host sync per window)
    "loss_growth": 100.0,  # warn when the mean loss (GANs: G's adversarial loss) exceeds this x its first window's
    "d_loss_floor": 0.01,  # GANs: warn when D's mean loss falls below this (D wins; G's adversarial gradient vanishes)
}


class DivergenceError(ValueError):
    """Training stopped because the loss stayed non-finite (NaN / inf) for too many steps in a row."""


def guard_settings(guard: Mapping | None) -> dict[str, Any]:
    """``guard`` merged over :data:`GUARD_DEFAULTS`, checked: unknown keys and out-of-range values raise
    ``ValueError`` naming the key."""
    settings = dict(GUARD_DEFAULTS)
    for key, value in (guard or {}).items():
        if key not in GUARD_DEFAULTS:
            raise ValueError(f"unknown key guard.{key}; valid keys: {', '.join(GUARD_DEFAULTS)}")
        settings[key] = value
    for key in ("max_nonfinite_steps", "window"):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"guard.{key}={value!r}: expected an integer >= 1")
    for key in ("d_loss_floor", "loss_growth"):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"guard.{key}={value!r}: expected a number >= 0")
    return settings


def _all_ranks_agree(module: Any, decision: bool) -> bool:
    """``decision`` AND-ed over all processes (the module's own when it is not attached to a trainer)."""
    try:
        trainer = module.trainer
    except RuntimeError:  # not attached to a Trainer (unit tests calling training_step directly)
        return decision
    if trainer is None:
        return decision
    return bool(trainer.strategy.reduce_boolean_decision(decision, all=True))


RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")


def snapshot_running_stats(*modules: torch.nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Copies of the normalisation running statistics (BatchNorm's ``running_mean`` / ``running_var`` /
    ``num_batches_tracked``) of ``modules``: a forward pass in train mode updates them even when the step is then
    skipped, so a NaN batch would poison them. Empty (free) for networks without BatchNorm."""
    return [(b, b.detach().clone()) for m in modules for n, b in m.named_buffers()
            if n.rsplit(".", 1)[-1] in RUNNING_STATS]


@torch.no_grad()
def restore_running_stats(saved: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Put back what :func:`snapshot_running_stats` copied."""
    for buffer, copy in saved:
        buffer.copy_(copy)


class NonFiniteGuard:
    """Counts non-finite losses in a row. :meth:`check` returns whether a step may update the weights; after
    ``max_in_row`` non-finite steps in a row it raises :class:`DivergenceError`."""

    def __init__(self, max_in_row: int = GUARD_DEFAULTS["max_nonfinite_steps"]) -> None:
        self.max_in_row = max_in_row
        self.in_row = 0
        self.skipped = 0

    def check(self, module: Any, losses: Mapping[str, torch.Tensor], reset: bool = True) -> bool:
        """True when every loss in ``losses`` (name -> scalar tensor) is finite on every process; otherwise the
        step is to be skipped: logged as a warning (rank 0) and counted. A finite check ends a run of non-finite
        steps unless ``reset=False`` (a step with several losses calls :meth:`reset` once all were finite)."""
        finite = all(bool(torch.isfinite(v.detach()).all()) for v in losses.values())
        if _all_ranks_agree(module, finite):
            if reset:
                self.reset()
            return True
        self.in_row += 1
        self.skipped += 1
        step = getattr(module, "global_step", 0)
        values = ", ".join(f"{k}={float(v.detach().float().mean()):.4g}" for k, v in losses.items())
        if getattr(module, "global_rank", 0) == 0:
            log.warning("step %d: non-finite loss (%s): step skipped, weights not updated (%d/%d in a row)",
                        step, values, self.in_row, self.max_in_row)
        if self.in_row >= self.max_in_row:
            raise DivergenceError(
                f"training diverged: {self.in_row} non-finite losses in a row at step {step} ({values}; "
                f"guard.max_nonfinite_steps={self.max_in_row}). Lower the learning rate (model.optimizer.lr), "
                f"clip gradients (trainer.gradient_clip_val) or check the data"
            )
        return False

    def reset(self) -> None:
        """A healthy step: the run of non-finite steps is over."""
        self.in_row = 0


class LossGrowthMonitor:
    """Averages a loss over windows of ``window`` steps (one host sync per window) and warns when a window's mean
    exceeds ``growth`` x the first window's (a finite divergence: a saturating network whose loss went from 0.2 to
    1e10 never turns NaN). Warned when it starts, and again only after it has cleared. ``growth=0`` disables it."""

    def __init__(self, name: str, window: int, growth: float) -> None:
        self.name, self.window, self.growth = name, window, growth
        self._sum: torch.Tensor | float = 0.0
        self._count = 0
        self.reference: float | None = None
        self.exploding = False
        self.last_mean: float | None = None

    def update(self, step: int, loss: torch.Tensor) -> str | None:
        """Add one step's finite loss; returns a warning message when the growth starts (else ``None``)."""
        if self.growth <= 0:
            return None
        self._sum = self._sum + loss.detach().float()
        self._count += 1
        if self._count < self.window:
            return None
        mean = self.last_mean = float(self._sum) / self._count
        self._sum, self._count = 0.0, 0
        if self.reference is None:
            self.reference = max(mean, 1e-12)
            return None
        exploding = mean > self.growth * self.reference
        started = exploding and not self.exploding
        self.exploding = exploding
        if not started:
            return None
        return (f"step {step}: {self.name} averaged {mean:.4g} over the last {self.window} steps, "
                f"{mean / self.reference:.3g}x its first window's {self.reference:.4g} (> guard.loss_growth="
                f"{self.growth:g}x): training is diverging. Lower the learning rate or clip gradients")


class GanCollapseMonitor:
    """GAN collapse signals, over windows of ``window`` steps (one host sync per window):

    * the mean D loss falls below ``d_loss_floor`` (D separates real from fake perfectly: the generator's
      adversarial gradient vanishes) — for D losses that are >= 0 (vanilla, LSGAN, RaGAN, hinge);
    * the mean G adversarial loss exceeds ``loss_growth`` x its first window's mean (G loss exploding) — for G
      losses that are >= 0 (vanilla, LSGAN, RaGAN).

    Each condition is warned when it starts, and again only after it has cleared; ``warnings`` keeps them."""

    NONNEG_D = ("vanilla", "lsgan", "ragan", "hinge")
    NONNEG_G = ("vanilla", "lsgan", "ragan")

    def __init__(self, gan_type: str, window: int, d_loss_floor: float, loss_growth: float) -> None:
        self.check_d = gan_type in self.NONNEG_D and d_loss_floor > 0
        self.window, self.d_loss_floor = window, d_loss_floor
        self.g_growth = LossGrowthMonitor("the generator's adversarial loss", window,
                                          loss_growth if gan_type in self.NONNEG_G else 0.0)
        self._d_sum: torch.Tensor | float = 0.0
        self._count = 0
        self.d_collapsed = False
        self.warnings: list[str] = []

    def update(self, step: int, d_loss: torch.Tensor, g_gan: torch.Tensor, rank_zero: bool = True) -> None:
        """Add one step's (finite) losses; checks at the end of each window."""
        messages = [self.g_growth.update(step, g_gan)]
        if self.check_d:
            self._d_sum = self._d_sum + d_loss.detach().float()
            self._count += 1
            if self._count >= self.window:
                d_mean = float(self._d_sum) / self._count
                self._d_sum, self._count = 0.0, 0
                collapsed = d_mean < self.d_loss_floor
                if collapsed and not self.d_collapsed:
                    messages.append(
                        f"step {step}: GAN collapse? the discriminator's loss averaged {d_mean:.3g} over the last "
                        f"{self.window} steps (< guard.d_loss_floor={self.d_loss_floor:g}): D tells real from fake "
                        f"perfectly and the generator's adversarial gradient vanishes")
                self.d_collapsed = collapsed
        for message in messages:
            if message is None:
                continue
            message = message.replace("training is diverging", "GAN collapse? G loss exploding")
            self.warnings.append(message)
            if rank_zero:
                log.warning(message)
