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
from pathlib import Path
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from src.config.errors import ConfigError
from src.config.ranges import HYDRA_KEYS, check_values

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_BENCHMARKS = REPO_ROOT / "benchmarks"  # Set5 and Set14 ship with the repository


def benchmarks_root() -> str:
    """``$SR_BENCHMARKS`` when set, else the repository's ``benchmarks/`` folder (independent of the cwd)."""
    return os.environ.get("SR_BENCHMARKS") or str(SHIPPED_BENCHMARKS)


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


def target_parameters(target: Any) -> tuple[set[str], bool]:
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
            names, var_kw = target_parameters(obj)
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
