"""Command-line overrides checked before Hydra runs an entry point, so that every mistake gives one ``error:`` line.

Hydra applies ``key=value`` overrides to a config in struct mode and stops at the first key the config lacks with
its own multi-line message (``Could not override 'data.patch_sise'… Key 'patch_sise' is not in struct``), before
an entry point's code runs. :func:`check_command_line` composes the same config first (Hydra's compose API, the
first value of each sweep) and turns such failures into a :class:`~src.config.validation.ConfigError` message:

* an unknown key, at any depth (``data.patch_sise``, ``model.arch.num_fet``, ``sead``): the closest valid key and
  the valid keys of that node; a parameter of the node's ``_target_`` that the config file leaves out is named as
  such (add it with ``+key=value``);
* a value the typed schema (:mod:`src.config.schema`) cannot hold: the key, the value and the expected type;
* an unknown option of a config group (``model=espcnn``): the closest option and the available ones.

The compose costs ~0.1-0.3 s, once per command. Commands with other Hydra flags than ``--multirun`` (``--help``,
``--cfg``, ``-sc`` …) are left to Hydra.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from src.config.validation import HYDRA_KEYS, target_parameters, trainer_parameters, unknown_key_message

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
RUN_FLAGS = ("-m", "--multirun")
CODE_ARGUMENTS = {"degradation", "guard"}  # passed by the train flow, not by config (data / model)


def _closest(key: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _first_of_sweeps(overrides: list[str]) -> list[str] | None:
    """The overrides with every sweep (``a=1,2``, ``choice(…)``, ``range(…)``) replaced by its first value; ``None``
    when a sweep has no first value to try (``interval(…)`` of the Optuna sweeper)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    out = []
    for line, override in zip(overrides, parsed):
        if not override.is_sweep_override():
            out.append(line)
            continue
        if override.is_interval_sweep():
            return None
        first = next(iter(override.sweep_string_iterator()), None)
        if first is None:
            return None
        out.append(f"{override.get_key_element()}={first}")
    return out


def _compose(config_name: str, overrides: list[str]) -> DictConfig:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name, overrides=overrides)


def _node_keys(node: DictConfig, path: list[str]) -> tuple[set[str], set[str]]:
    """(keys of ``node``, parameters of its ``_target_`` (``trainer``: of ``lightning.Trainer``) that it leaves
    out)."""
    keys = {str(k) for k in node if str(k) not in HYDRA_KEYS and str(k) != "hydra"}
    target = node.get("_target_") if "_target_" in node else None
    extra: set[str] = set()
    if path == ["trainer"]:
        extra = trainer_parameters() - keys
    elif target is not None:
        try:
            from hydra.utils import get_object

            names, _ = target_parameters(get_object(str(target)))
            extra = names - keys - CODE_ARGUMENTS
        except Exception:  # noqa: BLE001 - an unimportable target is reported by the entry point's validation
            pass
    return keys, extra


def override_key_message(cfg: DictConfig, dotted: str, value: str, entry: str) -> str | None:
    """The error for an override of ``dotted``, a key that ``cfg`` lacks (``None`` if ``cfg`` has it)."""
    node: DictConfig = cfg
    path: list[str] = []
    for part in dotted.split("."):
        if not isinstance(node, DictConfig):
            return f"config key '{'.'.join(path)}' is not a mapping: cannot set '{dotted}'"
        keys, extra = _node_keys(node, path)
        if part not in keys:
            where = ".".join(path) if path else None
            full = ".".join([*path, part])
            what = f"'{where}'" if where else f"{entry}'s top-level config"
            if part in extra:
                owner = "lightning.Trainer" if path == ["trainer"] else node._target_
                return (f"config key '{full}' is a parameter of {owner} that the config of {what} leaves out: "
                        f"add it with +{full}={value}")
            return unknown_key_message(full, keys | extra, what)
        path.append(part)
        node = node._get_node(part)
    return None


def _translate(exc: ConfigCompositionException, config_name: str, overrides: list[str], entry: str) -> str | None:
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and exc.options is not None:
        group, _, option = str(exc.missing_cfg_file).rpartition("/")
        options = sorted(exc.options)
        return (f"{group}={option}: Could not find '{exc.missing_cfg_file}'.{_closest(option, options)} "
                f"Available options in '{group}': {', '.join(options)}")
    cause = exc.__cause__
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)):
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides(overrides)
        for i, override in enumerate(parsed):
            key = override.key_or_group
            if override.package is not None or override.is_delete() or override.is_add() or override.is_force_add():
                continue
            if str(exc).startswith(f"Could not override '{key}'"):
                try:
                    cfg = _compose(config_name, overrides[:i] + overrides[i + 1:])
                except ConfigCompositionException:
                    return None
                return override_key_message(cfg, key, override.get_value_element_as_str(), entry)
    if isinstance(cause, ValidationError):
        key = getattr(cause, "full_key", None) or "?"
        return f"{key}: {str(cause).splitlines()[0]}"
    return None


def _unreadable(argv: list[str], exc: OverrideParseException) -> str:
    """The message for an argument Hydra cannot parse: not ``key=value``, or a value that needs quotes."""
    bad = next((a for a in argv if "=" not in a and a not in RUN_FLAGS), None)
    if bad is not None:
        return f"argument {bad!r} is not key=value (see --help)"
    return f"{str(exc).splitlines()[0]} (quote a value with special characters: key='\"value\"')"


def check_command_line(module: str, config_name: str, argv: list[str] | None = None) -> None:
    """Compose ``conf/<config_name>.yaml`` with the command line's overrides; on an unknown key, a badly typed
    value or an unknown group option print one ``error: …`` line and exit with status 2 (as
    :func:`~src.config.validation.exit_on_user_error` does for errors found later). Anything else is left to
    Hydra. ``SRSUITE_TRACEBACK=1`` skips the check (Hydra's own report)."""
    argv = sys.argv[1:] if argv is None else argv
    if os.environ.get("SRSUITE_TRACEBACK") or any(a.startswith("-") and a not in RUN_FLAGS for a in argv):
        return
    try:
        overrides = _first_of_sweeps([a for a in argv if a not in RUN_FLAGS])
    except OverrideParseException as exc:
        print(f"error: {_unreadable(argv, exc)}", file=sys.stderr)
        sys.exit(2)
    if overrides is None:
        return
    try:
        _compose(config_name, overrides)
    except ConfigCompositionException as exc:
        message = _translate(exc, config_name, overrides, module)
        if message is not None:
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)
    except Exception:  # noqa: BLE001 - anything else (a sweep syntax Hydra reports better): Hydra's own message
        return


def run_in_process(module: str, argv: Sequence[str]) -> int:
    """``python -m <module> <argv>`` in this process (for tests and scripts): the module runs as ``__main__``, as
    ``python -m`` runs it; returns the exit status (0, or 2 after one ``error:`` line)."""
    import runpy
    import warnings

    saved = sys.argv
    sys.argv = [module, *argv]
    try:
        with warnings.catch_warnings():  # the module may have been imported already: it runs afresh
            warnings.filterwarnings("ignore", message=".*found in sys.modules", category=RuntimeWarning)
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = saved
    return 0
