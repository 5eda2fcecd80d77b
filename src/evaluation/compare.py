"""The ``methods`` mode of ``python -m src.evaluate``: several methods (``methods=[{name, model, weights,
overrides}, …]``) scored in one table, with comparison crops of chosen images and the perception–distortion plot."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from src.config.schema import EvaluateConfig
from src.config.validation import ConfigError, validate
from src.evaluation.benchmark import benchmark_options, load_benchmark_set, score_set
from src.evaluation.panels import comparison_panel, detailed_crop, save_panel
from src.evaluation.results import ImageScore, SetScore, markdown_table, summarize, write_csv
from src.evaluation.run import check_tiling, save_sample, with_inference_options
from src.inference.upscale import pick_device
from src.methods.loading import LIGHTNING_NET_PREFIXES, build_eval_model
from src.metrics.efficiency import count_parameters
from src.metrics.suite import build_metric_suite
from src.storage.atomic import write_text
from src.weights.auto_model import is_auto
from src.weights.files import read_hparams
from src.zoo import resolve_weights


@dataclass(frozen=True)
class MethodSpec:
    """One entry of ``methods``: a display ``name``, a ``conf/model`` option, weights, overrides of model keys."""

    index: int
    name: str
    model: str
    weights: str | None
    overrides: dict

    @property
    def where(self) -> str:
        return f"methods[{self.index}] ({self.name})"


def parse_methods(entries) -> list[MethodSpec]:
    """Check the ``methods`` entries (known keys, a model option, unique names, existing weight files)."""
    from src.config.schema import MethodEntry, keys_of
    from src.config.validation import check_keys

    specs = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, (dict, DictConfig)):
            raise ConfigError(f"methods[{index}] must be a mapping {{name, model, weights, overrides}}, got {entry!r}")
        label = entry.get("name") or entry.get("model") or "?"
        check_keys(entry, f"methods[{index}]", keys_of(MethodEntry), f"the method entry methods[{index}] ({label})")
        model = entry.get("model")
        if not model or not str(model).replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"methods[{index}] ({label}): 'model' must name a conf/model option, got {model!r}")
        overrides = entry.get("overrides") or {}
        if OmegaConf.is_config(overrides):
            overrides = OmegaConf.to_container(overrides, resolve=True)
        if not isinstance(overrides, dict):
            raise ConfigError(f"methods[{index}] ({label}): 'overrides' must be a mapping of model keys")
        weights = entry.get("weights")
        if weights is not None:  # a file or a model name (src.zoo)
            try:
                weights = resolve_weights(str(weights))
            except FileNotFoundError as exc:
                raise FileNotFoundError(f"methods[{index}] ({label}): {exc}") from exc
        specs.append(MethodSpec(index, str(entry.get("name") or model), str(model),
                                None if weights is None else str(weights), overrides))
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"methods: names must be unique; repeated: {duplicates} (set 'name' per entry)")
    return specs


def _compose_model_group(model: str) -> DictConfig:
    """``{'model': conf/model/<model>.yaml}`` composed by Hydra (inside a running Hydra app: its search path)."""
    from src.weights.auto_model import compose_model_option

    return compose_model_option(model)


def method_config(spec: MethodSpec, cfg: DictConfig, scale: int, composed: DictConfig | None = None) -> DictConfig:
    """The ``model`` node of ``spec`` at ``scale``: the composed model config under a root holding what model
    configs interpolate (``scale``), with ``weights`` and ``overrides`` merged."""
    from omegaconf.errors import OmegaConfBaseException

    if composed is None:
        try:
            composed = _compose_model_group(spec.model)
        except Exception as exc:  # noqa: BLE001 - Hydra's MissingConfigException lists the valid options
            raise ConfigError(f"{spec.where}: model={spec.model}: {exc}") from None
    root = OmegaConf.create({"scale": int(scale)})
    root = OmegaConf.merge(root, composed)
    if is_auto(root.model):
        return _auto_method_config(spec, root, scale)
    trainable = getattr(get_class(root.model._target_), "trainable", True)
    if spec.weights and not trainable:
        raise ConfigError(f"{spec.where}: model={spec.model} has no parameters: drop 'weights'")
    if trainable and not spec.weights:
        raise ConfigError(f"{spec.where}: model={spec.model} needs 'weights' (a weights file or a Lightning .ckpt)")
    update = dict(spec.overrides)
    if spec.weights:
        update["weights"] = spec.weights
    try:
        root = OmegaConf.merge(root, {"model": update})
        validate(root, ("scale", "model"), trainer_key=None)
    except (OmegaConfBaseException, ConfigError) as exc:
        raise ConfigError(f"{spec.where}: {_override_problem(exc, composed)}") from None
    return root.model


def _auto_method_config(spec: MethodSpec, root: DictConfig, scale: int) -> DictConfig:
    """``model: auto``: the network in the entry's weights file (``src.weights.auto_model``) at ``scale``."""
    from src.weights.auto_model import resolve_auto

    if not spec.weights:
        raise ConfigError(f"{spec.where}: model=auto needs 'weights' (the file the network is read from)")
    try:
        root = OmegaConf.merge(root, {"model": dict(spec.overrides)})
        resolve_auto(root, source=spec.weights, fallback_scale=scale)
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"{spec.where}: {exc}") from None
    root.scale = int(scale)  # a network of another scale is skipped there (_skip_reason)
    validate(root, ("scale", "model"), trainer_key=None)
    return root.model


def _override_problem(exc: Exception, composed: DictConfig) -> str:
    """An unknown key in ``overrides`` named with its closest valid key, else the first line of the error."""
    import difflib

    full_key = str(getattr(exc, "full_key", "") or "")
    if "not in struct" in str(exc) and full_key:
        parent, _, key = full_key.rpartition(".")
        node = OmegaConf.select(composed, parent) if parent else composed
        valid = sorted(str(k) for k in node) if OmegaConf.is_dict(node) else []
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return f"overrides: unknown key '{full_key}'.{hint} Valid keys of {parent}: {', '.join(valid)}"
    return f"overrides: {str(exc).splitlines()[0]}"


def _method_scales(cfg: DictConfig, specs: list[MethodSpec]) -> list[int]:
    """``benchmarks.scales``; else the scales the methods' checkpoints were trained for; else [2, 3, 4] when
    every method is parameter-free; else ``scale``."""
    if cfg.benchmarks.scales is not None:
        return [int(s) for s in cfg.benchmarks.scales]
    found = []
    for spec in specs:
        hparams = read_hparams(spec.weights) if spec.weights else None
        if hparams and hparams.get("input") != "bicubic":
            found.append(int(hparams["scale"]))
        elif spec.model == "auto" and spec.weights and _auto_scale(spec):
            found.append(_auto_scale(spec))
    if found:
        return sorted(set(found))
    if not any(s.weights for s in specs):
        return [2, 3, 4]
    return [int(cfg.scale)]


def _auto_scale(spec: MethodSpec) -> int | None:
    """The scale of the network in a ``model: auto`` entry's file (``None``: bicubic input, any scale)."""
    from src.weights.detection import detect_file

    given = {k: v for k, v in (spec.overrides.get("arch") or {}).items() if v is not None}
    found = detect_file(spec.weights, given, net_prefixes=LIGHTNING_NET_PREFIXES)
    return found.scale if found.entry.scale_arg else None


def _skip_reason(spec: MethodSpec, scale: int) -> str | None:
    """Why ``spec`` cannot run at ``scale`` (a checkpoint trained for another scale), else ``None``."""
    if spec.model == "auto" and spec.weights:
        own = _auto_scale(spec)
        if own is not None and own != scale:
            return f"{spec.name} skipped at x{scale}: {spec.weights} holds an x{own} network"
        return None
    hparams = read_hparams(spec.weights) if spec.weights else None
    if hparams and int(hparams["scale"]) != scale and hparams.get("input") != "bicubic":
        return f"{spec.name} skipped at x{scale}: {spec.weights} was trained for x{hparams['scale']}"
    return None


def _wanted(names, set_name: str, image: str) -> bool:
    return image in names or f"{set_name}/{image}" in names


def evaluate_methods(cfg: DictConfig, out_dir: str | Path) -> list[SetScore]:
    """Score every entry of ``cfg.methods`` on every set x scale into one ``results.csv`` / ``per_image.csv`` /
    ``results.md``; write ``compare/<Set>_<image>_x<s>.png`` (LR nearest | each method with its PSNR | HR, same
    crop) for ``compare.images`` and ``perception_distortion.png`` (PSNR against NIQE / LPIPS / PI)."""
    from src.evaluation.plots import plot_perception_distortion

    validate(cfg, EvaluateConfig, trainer_key=None)  # with benchmarks.*, samples.*, compare.*
    check_tiling(cfg)
    lr_options = benchmark_options(cfg.benchmarks)
    compare = cfg.get("compare") or OmegaConf.create({"images": [], "crop": 96, "plot_metric": "auto"})
    if cfg.ckpt_path:
        raise ConfigError("ckpt_path is for one model; with methods=[…] give each method its own 'weights'")
    specs = parse_methods(cfg.methods)
    out_dir = Path(out_dir)
    device = pick_device(cfg.device)
    suite = build_metric_suite(cfg.metrics)
    composed = {}
    for spec in specs:  # compose and check every entry before anything runs
        if spec.model not in composed:
            try:
                composed[spec.model] = _compose_model_group(spec.model)
            except Exception as exc:  # noqa: BLE001 - Hydra's MissingConfigException lists the valid options
                raise ConfigError(f"{spec.where}: model={spec.model}: {exc}") from None
        method_config(spec, cfg, int(cfg.scale), composed[spec.model])
    samples_wanted, compare_wanted = set(cfg.samples.images), set(compare.images)
    scores: list[ImageScore] = []
    params: dict[tuple[str, int], int] = {}
    notes: list[str] = []
    shown: set[str] = set()
    panels = 0
    for scale in _method_scales(cfg, specs):
        models = []
        for spec in specs:
            reason = _skip_reason(spec, scale)
            if reason:
                notes.append(reason)
                print(reason, file=sys.stderr)
                continue
            model_cfg = method_config(spec, cfg, scale, composed[spec.model])
            try:
                model = build_eval_model(model_cfg, scale, None, channels_last=cfg.channels_last).to(device)
            except (ValueError, FileNotFoundError) as exc:
                raise ConfigError(f"{spec.where}: {exc}") from None
            params[(spec.name, scale)] = count_parameters(model)
            postprocess = cfg.postprocess or model_cfg.get("postprocess", "none")
            models.append((spec.name, with_inference_options(model, scale, cfg.ensemble, postprocess,
                                                             cfg.bp_iterations, cfg.tile, cfg.tile_overlap)))
        for set_name in cfg.benchmarks.sets:
            images = load_benchmark_set(cfg.benchmarks.root, set_name, scale, **lr_options)
            keep = {i.name for i in images if _wanted(samples_wanted | compare_wanted, set_name, i.name)}
            outputs: dict[str, dict[str, torch.Tensor]] = {}
            psnrs: dict[tuple[str, str], float] = {}
            for name, model in models:
                set_scores, kept = score_set(model, images, name, set_name, scale, suite, device, keep_outputs=keep,
                                              progress=True)
                scores.extend(set_scores)
                psnrs.update({(name, s.image): s.psnr_y for s in set_scores})
                for image, sr in kept.items():
                    outputs.setdefault(image, {})[name] = sr
            for img in images:
                if img.name not in outputs:
                    continue
                if _wanted(samples_wanted, set_name, img.name):
                    for name, sr in outputs[img.name].items():
                        save_sample(img, sr, scale, name, cfg.samples.crop, out_dir / "samples", set_name)
                if _wanted(compare_wanted, set_name, img.name):
                    shown.update({img.name, f"{set_name}/{img.name}"})
                    labels = {name: f"{name} {psnrs[(name, img.name)]:.2f} dB" for name in outputs[img.name]}
                    save_comparison(img, outputs[img.name], labels, scale, compare.crop,
                                    out_dir / "compare" / f"{set_name}_{Path(img.name).stem}_x{scale}.png")
                    panels += 1
    if not scores:
        raise ConfigError("methods: nothing was scored (" + "; ".join(notes) + ")")
    missing = sorted(compare_wanted - shown)
    if missing:
        print(f"compare.images not found in benchmarks.sets {list(cfg.benchmarks.sets)}: {missing}", file=sys.stderr)
    summary = summarize(scores, suite)
    for row in summary:
        row.values["params"] = params[(row.method, row.scale)]
    write_csv(summary, out_dir / "results.csv")
    write_csv(scores, out_dir / "per_image.csv")
    table = markdown_table(summary)
    if notes:
        table += "\n\n" + "\n".join(f"- {note}" for note in notes)
    write_text(out_dir / "results.md", table + "\n")
    plot = plot_perception_distortion(summary, out_dir / "perception_distortion.png",
                                      metric=compare.plot_metric, connect=False)
    print(table)
    print(f"\nWrote {out_dir / 'results.csv'}, per_image.csv, results.md"
          + (f", {plot.name}" if plot else " (no perception-distortion plot: add niqe or lpips to metrics.names)")
          + (f", compare/ ({panels} PNG)" if panels else ""))
    return summary


def save_comparison(img, outputs: dict[str, torch.Tensor], labels: dict[str, str], scale: int, crop: int,
                    path: Path) -> Path:
    """LR (nearest-upscaled) | each method | HR, the same ``crop``-px square (the most detailed one of the HR)."""
    from src.evaluation.panels import nearest_upscale

    hr = img.hr if img.hr.shape[0] == 3 else img.hr.expand(3, -1, -1)
    lr = img.lr if img.lr.shape[0] == 3 else img.lr.expand(3, -1, -1)
    lr_up = nearest_upscale(lr, tuple(hr.shape[-2:]))
    images = [lr_up, *outputs.values(), hr]
    names = [f"LR x{scale} (nearest)", *(labels[name] for name in outputs), "HR"]
    return save_panel(comparison_panel(images, names, crop=detailed_crop(hr, crop)), path)
