"""Resuming with a changed LR schedule (``ckpt_path=…`` plus e.g. a larger ``trainer.max_steps``).

Lightning restores each scheduler's whole state from the checkpoint, its arguments included: a cosine schedule
whose ``T_max`` follows ``trainer.max_steps`` would silently keep the old horizon (and, once past it, climb back
up: 1e-5 back to ~1e-3). Policy here:

* **Extend** where the arguments can change without a jump: ``T_max`` (``CosineAnnealingLR``), ``milestones``
  and ``gamma`` (``MultiStepLR``), ``step_size`` (``StepLR``), ``eta_min``. The restored state takes the new
  value and the rate continues *from its current value*: a cosine decays from where it is to ``eta_min`` at the
  new ``T_max`` (PyTorch's recursive cosine step); one that had already reached ``eta_min`` stays there. Each
  change is logged as a warning with the rate at the resume step.
* **Refuse** (``ValueError`` naming the key) any other change: another scheduler class, a schedule added or
  removed, or other arguments (``T_0`` of warm restarts …), which the restored state would ignore.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

EXTENDABLE = ("T_max", "milestones", "gamma", "step_size", "eta_min")
HYDRA_ARGS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    if isinstance(a, Counter):
        return a == Counter(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


def _as_state_value(old: Any, new: Any) -> Any:
    """The new config value in the type the scheduler keeps (MultiStepLR keeps milestones as a Counter)."""
    if isinstance(old, Counter):
        return Counter(new)
    if isinstance(old, int) and not isinstance(old, bool) and float(new).is_integer():
        return int(new)
    return new


def _lr(state: Mapping) -> str:
    last = state.get("_last_lr")
    return ", ".join(f"{float(v):.3g}" for v in last) if last else "?"


def reconcile_lr_schedulers(
    checkpoint: dict[str, Any],
    new: Sequence[tuple[str, Mapping | None]],
    old: Sequence[tuple[str, Mapping | None]],
) -> list[tuple[str, str, Any, Any]]:
    """Update ``checkpoint["lr_schedulers"]`` in place so that the resumed schedules follow the config ``new``
    (``[(config key, scheduler config)]`` in ``configure_optimizers`` order) instead of ``old`` (the same, from
    the checkpoint's hyperparameters). Returns the changes ``(key, argument, old value, new value)``; raises
    ``ValueError`` for a change that cannot be carried over (see the module docstring)."""
    states = checkpoint.get("lr_schedulers") or []
    step = checkpoint.get("global_step", "?")
    new_keys = [k for k, _ in new]
    old_keys = [k for k, _ in old]
    if len(states) != len(new) or new_keys != old_keys:
        raise ValueError(
            f"cannot resume: the checkpoint has {len(states)} LR schedule(s) ({', '.join(old_keys) or 'none'}), this "
            f"run configures {len(new)} ({', '.join(new_keys) or 'none'}). Resume with the checkpoint's schedule, or "
            f"start a new run from its weights (model.weights=<checkpoint>)"
        )
    changes: list[tuple[str, str, Any, Any]] = []
    for (key, new_cfg), (_, old_cfg), state in zip(new, old, states):
        new_cfg, old_cfg = dict(new_cfg or {}), dict(old_cfg or {})
        if new_cfg.get("_target_") != old_cfg.get("_target_"):
            raise ValueError(
                f"cannot resume: {key} is {new_cfg.get('_target_')} here but {old_cfg.get('_target_')} in the "
                f"checkpoint. Resume with the same scheduler, or start a new run from its weights "
                f"(model.weights=<checkpoint>)"
            )
        for arg, value in new_cfg.items():
            if arg in HYDRA_ARGS or arg not in state or _same(state[arg], value):
                continue
            if arg not in EXTENDABLE:
                raise ValueError(
                    f"cannot resume with {key}.{arg}={value!r}: the checkpoint's schedule has {arg}={state[arg]!r} "
                    f"and only {', '.join(EXTENDABLE)} can change on resume. Resume with the checkpoint's value, or "
                    f"start a new run from its weights (model.weights=<checkpoint>)"
                )
            before = state[arg]
            state[arg] = _as_state_value(before, value)
            changes.append((key, arg, before, value))
            note = ""
            if arg == "T_max" and isinstance(state.get("last_epoch"), int) and state["last_epoch"] >= before:
                note = (" The cosine had already reached eta_min at its old end, so the rate stays at eta_min; "
                        "for a fresh schedule start a new run from the weights (model.weights=<checkpoint>).")
            elif arg == "T_max":
                note = f" The rate decays from its current value to eta_min at step {value}."
            before_text = sorted(before) if isinstance(before, Counter) else before
            log.warning("resuming at step %s: %s.%s %s -> %s (from this run's config; lr now %s).%s",
                        step, key, arg, before_text, value, _lr(state), note)
    return changes
