"""Types and ranges of the numeric knobs: :data:`RANGES` maps dotted key patterns to a :class:`Range`, and
:func:`check_values` raises one :class:`~src.config.errors.ConfigError` naming the key, the value and what was
expected (``trainer.val_check_interval=0: expected an integer >= 1, or a fraction in (0, 1], or null``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from src.config.errors import ConfigError

HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}  # Hydra's own, never range-checked


# ---- values: types and ranges ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Range:
    """What a numeric knob accepts: ``kind`` ``int`` (whole numbers) or ``number`` (int or float), the closed
    or open bounds ``low``/``high``, extra ``special`` values (``-1`` = unlimited) and whether ``null`` is
    allowed. ``fraction`` additionally accepts a float in (0, 1] (Lightning's "fraction of an epoch")."""

    kind: str = "int"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    none: bool = False
    special: tuple = ()
    fraction: bool = False
    note: str = ""

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.none
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if value in self.special and isinstance(value, int):
            return True
        if self.fraction and isinstance(value, float):
            return 0 < value <= 1
        if self.kind == "int" and not isinstance(value, int):
            return False
        if value != value:  # NaN
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def expected(self) -> str:
        what = "an integer" if self.kind == "int" else "a number"
        lo = None if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
        hi = None if self.high is None else f"{'<' if self.high_open else '<='} {self.high:g}"
        text = f"{what} {' and '.join(x for x in (lo, hi) if x)}".strip()
        if self.fraction:
            text += ", or a fraction in (0, 1]"
        if self.special:
            text += ", or " + " / ".join(str(v) for v in self.special)
        if self.none:
            text += ", or null"
        return text + (f" ({self.note})" if self.note else "")


_POS = Range(low=1)
_NONNEG = Range(low=0)
_PROB = Range(kind="number", low=0, high=1, none=True)
_POS_NUM = Range(kind="number", low=0, low_open=True)
# Every numeric knob of conf/, by dotted key ("*" matches one level). Checked by :func:`validate` for whichever keys
# the composed config has; list items (``data.train_scales[i]``) are checked one by one.
RANGES: dict[str, Range] = {
    "scale": Range(low=1, high=16, none=True, note="the SR factor"),
    "seed": Range(low=0, none=True),
    "data.patch_size": Range(low=1, note="HR patch side in px"),
    "data.batch_size": Range(low=1),
    "data.num_workers": _NONNEG,
    "data.repeat": _POS,
    "data.val_crop": Range(low=1, none=True),
    "data.val_limit": Range(low=1, none=True),
    "data.val_fraction": Range(kind="number", low=0, high=1, low_open=True, high_open=True, none=True),
    "data.split_seed": _NONNEG,
    "data.train_scales": Range(low=1, high=16, none=True),
    "trainer.max_steps": Range(low=1, note="the training budget in optimizer steps"),
    "trainer.max_epochs": Range(low=1, none=True, special=(-1,)),
    "trainer.min_steps": Range(low=0, none=True),
    "trainer.val_check_interval": Range(low=1, none=True, fraction=True, note="training steps between validations"),
    "trainer.check_val_every_n_epoch": Range(low=1, none=True),
    "trainer.limit_val_batches": Range(low=0, none=True, fraction=True),
    "trainer.limit_train_batches": Range(low=1, none=True, fraction=True),
    "trainer.num_sanity_val_steps": Range(low=0, none=True, special=(-1,)),
    "trainer.log_every_n_steps": Range(low=1, none=True),
    "trainer.gradient_clip_val": Range(kind="number", low=0, low_open=True, none=True),
    "trainer.accumulate_grad_batches": _POS,
    "trainer.num_nodes": _POS,
    "checkpoint.save_top_k": Range(low=0, special=(-1,)),
    "checkpoint.every_n_train_steps": Range(low=1, note="steps between saves of last.ckpt"),
    "guard.max_nonfinite_steps": Range(low=1, note="non-finite losses in a row that stop training"),
    "guard.window": _POS,
    "guard.loss_growth": Range(kind="number", low=0),
    "guard.d_loss_floor": Range(kind="number", low=0),
    "report.panel_images": _NONNEG,
    "report.crop": _POS,
    "model.optimizer*.lr": _POS_NUM,
    "model.optimizer*.weight_decay": Range(kind="number", low=0),
    "model.optimizer*.momentum": Range(kind="number", low=0, high=1, high_open=True),
    "model.lr_scheduler*.T_max": _POS,
    "model.lr_scheduler*.eta_min": Range(kind="number", low=0),
    "model.lr_scheduler*.gamma": Range(kind="number", low=0, high=1, low_open=True),
    "model.lr_scheduler*.step_size": _POS,
    "model.lr_scheduler*.milestones": _POS,
    "model.ema_decay": Range(kind="number", low=0, high=1, low_open=True, high_open=True, none=True),
    "model.grad_clip_theta": Range(kind="number", low=0, low_open=True, none=True),
    "model.grad_clip_[gd]": Range(kind="number", low=0, low_open=True, none=True),
    "model.net_d_iters": _POS,
    "model.net_d_init_iters": _NONNEG,
    "model.recipe.batch_size": _POS,
    "model.recipe.patch_size": _POS,
    "model.recipe.max_steps": _POS,
    "model.arch.num_*": _POS,
    "model.arch.upscale": Range(low=1, high=16, none=True),  # null until upscale reads the scale of a .ckpt
    "model.arch.scale": Range(low=1, high=16, none=True),
    "model.arch.depth": Range(low=1, note="convs per level / recursive block (LapSRN, MS-LapSRN)"),
    "model.arch.recursive": Range(low=1, note="recursions per pyramid level (MS-LapSRN)"),
    "model.arch.nf": _POS,
    "model.arch.group": Range(low=1, note="conv groups; must divide num_feat (CARN-M)"),
    "model.arch.block_feats": _POS,
    "model.arch.expand": _POS,
    "model.arch.linear": Range(kind="number", low=0, high=1, low_open=True, note="low-rank width factor (WDSR-B)"),
    "model.loss.*.loss_weight": Range(kind="number", low=0),
    "degradation.*_prob": _PROB,
    "degradation.queue_size": _NONNEG,
    "metrics.nr_crop_border": _NONNEG,
    "samples.crop": _POS,
    "compare.crop": _POS,
    "benchmarks.scales": Range(low=1, high=16, none=True),
    # src.upscale / src.degrade / src.interpolate
    "tile": Range(low=0, note="LR px; 0 = whole image"),
    "tile_overlap": _NONNEG,
    "pre_pad": _NONNEG,
    "bp_iterations": _NONNEG,
    "count": _POS,
    "alpha": Range(kind="number", low=0, high=1),
    "alphas": Range(kind="number", low=0, high=1, none=True),
}


def _matches(cfg: DictConfig, parts: list[str], path: str):
    """(dotted key, node) pairs of ``cfg`` matching the pattern ``parts`` (fnmatch per level)."""
    import fnmatch

    if not isinstance(cfg, DictConfig):
        return
    head, rest = parts[0], parts[1:]
    for key in cfg:
        key = str(key)
        if key in HYDRA_KEYS or not fnmatch.fnmatchcase(key, head):
            continue
        dotted = f"{path}.{key}" if path else key
        if rest:
            node = cfg._get_node(key)
            if isinstance(node, DictConfig):
                yield from _matches(node, rest, dotted)
        else:
            yield dotted, cfg, key


def check_values(cfg: DictConfig, ranges: dict[str, Range] | None = None) -> None:
    """Raise :class:`ConfigError` naming the key, the value and what was expected for the first value of
    :data:`RANGES` (or ``ranges``) that has the wrong type or lies outside its range."""
    for pattern, rule in (RANGES if ranges is None else ranges).items():
        for dotted, parent, key in _matches(cfg, pattern.split("."), ""):
            if OmegaConf.is_missing(parent, key):
                continue
            try:
                value = parent[key]
            except InterpolationResolutionError:  # refers to a key this composition lacks or leaves null
                # (model=bicubic has no recipe; upscale's scale=null): checked where it is used
                continue
            items = list(enumerate(value)) if isinstance(value, ListConfig) else [(None, value)]
            for i, item in items:
                if not rule.accepts(item):
                    where = dotted if i is None else f"{dotted}[{i}]"
                    raise ConfigError(f"{where}={item!r}: expected {rule.expected()}")
