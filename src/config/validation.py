"""Config support: OmegaConf resolvers used by ``conf/`` and validation of a composed config.

Validation rule: every config node with a ``_target_`` may only hold keys that are parameters of that
target (Hydra's own ``_partial_``/``_recursive_``/``_convert_``/``_args_`` aside); ``trainer`` may only hold
``lightning.Trainer`` arguments; top-level keys are fixed per entry point. A misspelled key therefore fails
before anything is built, with the valid keys and the closest match in the message.
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}
REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_BENCHMARKS = REPO_ROOT / "benchmarks"  # Set5 and Set14 ship with the repository


def benchmarks_root() -> str:
    """``$SR_BENCHMARKS`` when set, else the repository's ``benchmarks/`` folder (independent of the cwd)."""
    return os.environ.get("SR_BENCHMARKS") or str(SHIPPED_BENCHMARKS)


class ConfigError(ValueError):
    """A composed config that cannot run; the message names the key and what was expected."""


def _register_resolvers() -> None:
    if not OmegaConf.has_resolver("mul"):
        OmegaConf.register_new_resolver("mul", lambda *xs: _product(xs))
    if not OmegaConf.has_resolver("sr.channels"):
        OmegaConf.register_new_resolver("sr.channels", _channels_for_color)
    if not OmegaConf.has_resolver("sr.benchmarks"):
        OmegaConf.register_new_resolver("sr.benchmarks", benchmarks_root)
    if not OmegaConf.has_resolver("sr.direction"):
        OmegaConf.register_new_resolver("sr.direction", objective_direction)
    if not OmegaConf.has_resolver("sr.sqlite"):
        OmegaConf.register_new_resolver("sr.sqlite", _sqlite_url)
    if not OmegaConf.has_resolver("sr.new_dir"):
        # cached per config (as Hydra's ${now:}): every resolution of one run's hydra.run.dir gives one folder
        OmegaConf.register_new_resolver("sr.new_dir", new_run_dir, use_cache=True)


def _product(values: Iterable[Any]) -> Any:
    out = 1
    for v in values:
        out = out * v
    return out


def _channels_for_color(color: str) -> int:
    if color == "y":
        return 1
    if color == "rgb":
        return 3
    raise ConfigError(f"model.color={color!r}: expected 'rgb' or 'y'")


# metrics where lower is better (the rest: higher is better); the direction of a search's objective
LOWER_IS_BETTER = ("lpips", "niqe", "pi", "rmse")


def objective_direction(metric: str) -> str:
    """``minimize`` for metrics where lower is better (LPIPS, NIQE, PI, RMSE), else ``maximize``."""
    return "minimize" if str(metric).split("/")[-1] in LOWER_IS_BETTER else "maximize"


def _sqlite_url(path: str) -> str:
    """``sqlite:///<absolute path>`` for an Optuna storage file, its folder created (SQLite does not)."""
    from pathlib import Path

    file = Path(str(path)).expanduser().resolve()
    file.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{file}"


def new_run_dir(path: str) -> str:
    """``${sr.new_dir:<path>}`` (``hydra.run.dir`` / ``hydra.sweep.dir``): a folder that belongs to this run alone.

    ``path`` is created with ``os.mkdir`` (atomic: of two processes only one can create it); when it exists
    already — another run with the same ``run_name`` started in the same second, e.g. SLURM array tasks —
    ``path_1``, ``path_2`` … are tried. Exception: a requeued SLURM job (``SLURM_RESTART_COUNT`` > 0) whose folder
    exists keeps it, so that it resumes from its own ``last.ckpt``."""
    import os

    try:
        restarted = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0
    except ValueError:
        restarted = False
    if restarted and os.path.isdir(path):
        return path
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    candidate, n = path, 0
    while True:
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            n += 1
            candidate = f"{path}_{n}"


_register_resolvers()


def _suggest(key: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _parameters(target: Any) -> tuple[set[str], bool]:
    """(named parameters, accepts **kwargs) of a class constructor or a function."""
    names, var_kw = _parameters_of_func(target.__init__ if inspect.isclass(target) else target)
    if var_kw and inspect.isclass(target) and target.__module__.startswith("src."):
        # our classes forward **kwargs to their base class: collect the base classes' named parameters
        # (third-party **kwargs go elsewhere, e.g. DDPStrategy's to DistributedDataParallel: not checked)
        for base in target.__mro__[1:]:
            if base is object or "__init__" not in base.__dict__:
                continue
            base_names, base_var_kw = _parameters_of_func(base.__init__)
            names |= base_names
            if not base_var_kw:
                var_kw = False
                break
    return names, var_kw


def _parameters_of_func(func: Any) -> tuple[set[str], bool]:
    sig = inspect.signature(func)
    names = {n for n, p in sig.parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    names.discard("self")
    return names, any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())


def check_keys(node: DictConfig | dict, path: str, valid: Iterable[str], what: str) -> None:
    """Raise :class:`ConfigError` if ``node`` has a key outside ``valid``."""
    valid = set(valid)
    for key in node:
        if key not in valid and key not in HYDRA_KEYS:
            full = str(key) if path == "<root>" else f"{path}.{key}"
            raise ConfigError(unknown_key_message(full, valid, what))


def unknown_key_message(full_key: str, valid: Iterable[str], what: str) -> str:
    """``unknown config key 'data.patch_sise' for <what>. Did you mean 'patch_size'? Valid keys: …``"""
    valid = sorted(set(valid))
    key = full_key.rsplit(".", 1)[-1]
    return f"unknown config key '{full_key}' for {what}.{_suggest(key, valid)} Valid keys: {', '.join(valid)}"


def _walk_targets(node: Any, path: str) -> None:
    if isinstance(node, DictConfig):
        target = node.get("_target_") if "_target_" in node else None
        if target is not None:
            try:
                obj = get_object(str(target))
            except Exception as exc:  # noqa: BLE001 - report any import failure with the key
                raise ConfigError(f"'{path}._target_': cannot import {target!r} ({exc})") from exc
            names, var_kw = _parameters(obj)
            if not var_kw:
                check_keys(node, path, names, f"{target}")
        for key in node:
            if key in HYDRA_KEYS:
                continue
            if OmegaConf.is_missing(node, key):
                raise ConfigError(f"config key '{path}.{key}' is required but not set (???)")
            _walk_targets(node._get_node(key), f"{path}.{key}")
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            _walk_targets(node._get_node(i), f"{path}[{i}]")


def validate(cfg: DictConfig, top_level: type | Iterable[str], trainer_key: str | None = "trainer") -> None:
    """Validate a composed config (see module docstring); raises :class:`ConfigError`. ``top_level``: the entry
    point's schema (:mod:`src.config.schema`; its dataclass-typed nodes are checked too) or its top-level keys."""
    if isinstance(top_level, type):
        check_schema_keys(cfg, top_level, "<root>")
    else:
        check_keys(cfg, "<root>", set(top_level) | {"hydra"}, "this entry point's top-level config")
    for key in cfg:
        if key == "hydra":
            continue
        _walk_targets(cfg._get_node(key), str(key))
    if trainer_key and trainer_key in cfg:
        check_keys(cfg[trainer_key], trainer_key, trainer_parameters(), "lightning.Trainer")
    check_values(cfg)


def check_schema_keys(node: DictConfig, schema: type, path: str) -> None:
    """Keys of ``node`` against the dataclass ``schema`` (the keys Hydra lets through with ``+key=…``), and of each
    nested node whose field is a dataclass. ``trainer`` (any ``lightning.Trainer`` argument) is checked by
    :func:`validate`."""
    from dataclasses import fields, is_dataclass

    from src.config.schema import TrainerConfig

    hints = _field_types(schema)
    what = "this entry point's top-level config" if path == "<root>" else f"'{path}'"
    check_keys(node, path, set(hints) | ({"hydra"} if path == "<root>" else set()), what)
    for f in fields(schema):
        kind = hints[f.name]
        if is_dataclass(kind) and kind is not TrainerConfig and f.name in node and isinstance(node.get(f.name),
                                                                                              DictConfig):
            check_schema_keys(node[f.name], kind, f.name if path == "<root>" else f"{path}.{f.name}")


def _field_types(schema: type) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(schema)


def trainer_parameters() -> set[str]:
    """``lightning.Trainer`` arguments a ``trainer`` node may hold (callbacks, loggers, strategy, plugins and the
    root folder are built from their own config groups)."""
    import lightning

    names, _ = _parameters_of_func(lightning.Trainer.__init__)
    return names - {"callbacks", "logger", "strategy", "default_root_dir", "plugins"}


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


TRAINING_ONLY_GROUPS = ("degradation",)


def drop_training_groups(cfg: DictConfig) -> None:
    """Remove the groups a model config selects for training only (``model=realesrnet`` selects
    ``degradation=realesrgan``; evaluate / upscale / interpolate compose it through an ``optional degradation``
    slot so that such models compose there too, and never use it)."""
    from omegaconf import open_dict

    with open_dict(cfg):
        for group in TRAINING_ONLY_GROUPS:
            cfg.pop(group, None)


def exit_on_user_error(func):
    """Decorator for entry points: a config or input problem (:class:`ConfigError`, a missing file, a bad
    value) prints one ``error: …`` line to stderr and exits with status 2 instead of a traceback. Set
    ``SRSUITE_TRACEBACK=1`` to see the traceback."""
    import functools
    import os
    import sys

    from omegaconf.errors import OmegaConfBaseException

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        user_errors = (ConfigError, FileNotFoundError, FileExistsError, ValueError, OmegaConfBaseException)
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            # Hydra wraps errors raised while instantiating; our errors may wrap a library's (``from exc``):
            # report the outermost user error of the chain
            chain = [exc]
            while chain[-1].__cause__ is not None:
                chain.append(chain[-1].__cause__)
            found = next((e for e in chain if isinstance(e, user_errors)), None)
            if os.environ.get("SRSUITE_TRACEBACK") or found is None:
                raise
            print(f"error: {found}", file=sys.stderr)
            sys.exit(2)

    return wrapper
