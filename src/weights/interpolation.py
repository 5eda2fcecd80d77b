"""ESRGAN's network interpolation: θ = (1 − α)·θ_a + α·θ_b between a PSNR-oriented and a GAN-trained generator,
optionally scored at every α so that the perception–distortion trade-off can be read off a plot."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.config.schema import InterpolateConfig
from src.config.validation import ConfigError, drop_training_groups, validate
from src.evaluation.plots import plot_perception_distortion
from src.evaluation.results import SetScore, markdown_table, write_csv
from src.storage.atomic import write_text
from src.weights.checkpoints import load_weights
from src.weights.writing import export_weights, metadata
from src.zoo import resolve_weight_keys

log = logging.getLogger(__name__)



def interpolate_state(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], alpha: float) -> dict:
    """(1 − α)·a + α·b for floating-point tensors (computed in float64, cast back); integer buffers (e.g. BN's
    ``num_batches_tracked``) are taken from ``a``. The two state dicts must have the same keys and shapes."""
    if set(a) != set(b):
        missing, extra = sorted(set(a) - set(b))[:5], sorted(set(b) - set(a))[:5]
        raise ConfigError(f"the two networks have different keys: only in a: {missing}, only in b: {extra}")
    out = {}
    for key, ta in a.items():
        tb = b[key]
        if ta.shape != tb.shape:
            raise ConfigError(f"'{key}' has shape {tuple(ta.shape)} in a but {tuple(tb.shape)} in b")
        if ta.is_floating_point():
            out[key] = ((1 - alpha) * ta.double() + alpha * tb.double()).to(ta.dtype)
        else:
            out[key] = ta.clone()
    return out


def _alphas(cfg: DictConfig) -> list[float]:
    alphas = list(cfg.alphas) if cfg.alphas is not None else [cfg.alpha]
    if not alphas or any(not 0 <= float(x) <= 1 for x in alphas):
        raise ConfigError(f"alpha/alphas must lie in [0, 1], got {alphas}")
    return [float(x) for x in alphas]


def run_interpolation(cfg: DictConfig, out_dir: str | Path) -> list[Path]:
    """Write one BasicSR-format file per α; with ``evaluate=true``, score each on ``benchmarks`` and write
    ``interpolation.csv``, ``interpolation.md`` and ``perception_distortion.png`` into ``out_dir``."""
    from src.weights.auto_model import is_auto, resolve_auto

    drop_training_groups(cfg)
    validate(cfg, InterpolateConfig, trainer_key=None)
    if is_auto(cfg.model):  # the network of `a` (`b` must hold the same)
        resolve_auto(cfg, source=cfg.a, fallback_scale=cfg.scale, keep_weights=False)
        validate(cfg, InterpolateConfig, trainer_key=None)
    alphas = _alphas(cfg)
    if not isinstance(cfg.evaluate, bool):
        raise ConfigError(f"evaluate={cfg.evaluate!r}: expected true or false")
    resolve_weight_keys(cfg, "a", "b")  # files or model names (src.zoo)
    net = instantiate(OmegaConf.merge(cfg.model, {"scale": cfg.scale}).arch)
    from src.methods.loading import LIGHTNING_NET_PREFIXES  # the GAN / PSNR checkpoints of src.train

    state_a, state_b = (load_weights(p, net, LIGHTNING_NET_PREFIXES) for p in (cfg.a, cfg.b))
    output = Path(cfg.output)
    series = cfg.alphas is not None
    files = [output / f"{cfg.model.name}_alpha{a:.2f}.pth" for a in alphas] if series else [output]
    arch = OmegaConf.to_container(cfg.model.arch, resolve=True)
    meta = metadata(cfg.model.name, arch, cfg.scale, cfg.model.get("input", "lr"), cfg.model.get("color", "rgb"))
    for alpha, path in zip(alphas, files):
        if path.exists() and not cfg.overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=true to replace it")
        export_weights(interpolate_state(state_a, state_b, alpha), path, meta=meta)
        log.info("alpha=%.2f -> %s", alpha, path)
    print("\n".join(f"alpha={a:.2f}: {p}" for a, p in zip(alphas, files)))
    if cfg.evaluate:
        _evaluate_series(cfg, alphas, files, Path(out_dir))
    return files


def _evaluate_series(cfg: DictConfig, alphas: list[float], files: list[Path], out_dir: Path) -> None:
    from src.evaluation.run import evaluate

    rows: list[SetScore] = []
    for alpha, path in zip(alphas, files):
        model = OmegaConf.merge(cfg.model, {"weights": str(path), "name": f"{cfg.model.name}_a{alpha:.2f}"})
        eval_cfg = OmegaConf.create({
            "model": OmegaConf.to_container(model, resolve=False), "scale": cfg.scale, "ckpt_path": None,
            "device": cfg.device, "channels_last": cfg.channels_last, "run_name": cfg.run_name,
            "metrics": OmegaConf.to_container(cfg.metrics, resolve=True),
            "benchmarks": OmegaConf.to_container(cfg.benchmarks, resolve=True),
            "samples": OmegaConf.to_container(cfg.samples, resolve=True),
            "ensemble": False, "postprocess": None, "bp_iterations": 10, "tile": 0, "tile_overlap": 32,
        })
        if eval_cfg.benchmarks.scales is None:
            eval_cfg.benchmarks.scales = [cfg.scale]
        rows += evaluate(eval_cfg, out_dir / f"alpha{alpha:.2f}")
    write_csv(rows, out_dir / "interpolation.csv")
    table = markdown_table(rows)
    write_text(out_dir / "interpolation.md", table + "\n")
    plot_perception_distortion(rows, out_dir / "perception_distortion.png")
    print(table)
