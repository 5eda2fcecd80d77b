"""Config support: OmegaConf resolvers used by ``conf/`` and validation of a composed config.

Validation rule: every config node with a ``_target_`` may only hold keys that are parameters of that
target (Hydra's own ``_partial_``/``_recursive_``/``_convert_``/``_args_`` aside); ``trainer`` may only hold
``lightning.Trainer`` arguments; top-level keys are fixed per entry point. A misspelled key therefore fails
before anything is built, with the valid keys and the closest match in the message.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}


class ConfigError(ValueError):
    """A composed config that cannot run; the message names the key and what was expected."""


def _register_resolvers() -> None:
    if not OmegaConf.has_resolver("mul"):
        OmegaConf.register_new_resolver("mul", lambda *xs: _product(xs))
    if not OmegaConf.has_resolver("sr.channels"):
        OmegaConf.register_new_resolver("sr.channels", _channels_for_color)


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
            raise ConfigError(
                f"unknown config key '{path}.{key}' for {what}.{_suggest(str(key), valid)} "
                f"Valid keys: {', '.join(sorted(valid))}"
            )


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


def validate(cfg: DictConfig, top_level: Iterable[str], trainer_key: str | None = "trainer") -> None:
    """Validate a composed config (see module docstring); raises :class:`ConfigError`."""
    check_keys(cfg, "<root>", set(top_level) | {"hydra"}, "this entry point's top-level config")
    for key in cfg:
        if key == "hydra":
            continue
        _walk_targets(cfg._get_node(key), str(key))
    if trainer_key and trainer_key in cfg:
        import lightning

        names, _ = _parameters_of_func(lightning.Trainer.__init__)
        managed = {"callbacks", "logger", "strategy", "default_root_dir", "plugins"}
        check_keys(cfg[trainer_key], trainer_key, names - managed, "lightning.Trainer")


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
