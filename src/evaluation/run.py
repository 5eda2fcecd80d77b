"""What ``python -m src.evaluate`` does: score one method (``model=… [ckpt_path=…]``) on benchmark sets and scales
and write the tables and sample crops; several methods (``methods=[…]``) are scored by
:mod:`src.evaluation.compare`."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from src.config.schema import EvaluateConfig
from src.config.validation import ConfigError, validate
from src.evaluation.benchmark import benchmark_options, load_benchmark_set, score_set
from src.evaluation.panels import comparison_panel, detailed_crop, save_panel
from src.evaluation.results import ImageScore, SetScore, markdown_table, summarize, write_csv
from src.inference.upscale import pick_device
from src.methods.loading import build_eval_model
from src.metrics.efficiency import count_parameters
from src.metrics.suite import build_metric_suite
from src.storage.atomic import write_text
from src.weights.auto_model import is_auto
from src.weights.files import read_hparams
from src.zoo import resolve_weight_keys

POSTPROCESS = ("none", "back_projection")


def with_inference_options(model, scale: int, ensemble: bool, postprocess: str, bp_iterations: int,
                           tile: int = 0, tile_overlap: int = 32):
    """LR -> SR with the x8 self-ensemble and/or iterative back-projection around ``model``; ``tile`` > 0 runs
    the network (and the back-projection) on LR tiles of that size (``upscale``'s tiler: memory bounded by the
    tile, seam-free blending over ``tile_overlap`` px)."""
    if postprocess not in POSTPROCESS:
        raise ValueError(f"postprocess={postprocess!r}: expected one of {POSTPROCESS}")
    from src.inference.tiling import min_input_size, size_multiple, tiled_forward

    min_size = min_input_size(model) if isinstance(model, torch.nn.Module) else 1  # tiny images get padded
    if not ensemble and postprocess == "none" and not tile and min_size <= 1:
        return model
    from src.inference.back_projection import back_project_tiled
    from src.inference.ensemble import self_ensemble

    mod = size_multiple(model) if isinstance(model, torch.nn.Module) else 1

    def network(lr: torch.Tensor) -> torch.Tensor:
        return self_ensemble(model, lr) if ensemble else model(lr)

    def run(lr: torch.Tensor) -> torch.Tensor:
        if tile or min(lr.shape[-2:]) < min_size:
            sr = tiled_forward(network, lr, scale, tile, tile_overlap, 0, mod, None, None, min_size=min_size)
        else:
            sr = network(lr)
        if postprocess == "back_projection":
            sr = back_project_tiled(sr, lr, scale, bp_iterations, tile)
        return sr

    return run


def check_tiling(cfg: DictConfig) -> None:
    if cfg.tile and cfg.tile_overlap >= cfg.tile:
        raise ConfigError(f"tile_overlap={cfg.tile_overlap} must be smaller than tile={cfg.tile} (or tile=0: whole "
                          "images)")


def _scales(cfg: DictConfig) -> list[int]:
    if cfg.benchmarks.scales is not None:
        return [int(s) for s in cfg.benchmarks.scales]
    if not getattr(get_class(cfg.model._target_), "trainable", True):
        return [2, 3, 4]
    source = cfg.ckpt_path or cfg.model.get("weights")  # build_eval_model rejects both at once
    hparams = read_hparams(source) if source else None
    return [int(hparams["scale"])] if hparams else [int(cfg.scale)]


def _resolve_auto(cfg: DictConfig) -> None:
    """``model=auto``: the network in ``model.weights`` / ``ckpt_path``, at its own scale."""
    from src.weights.auto_model import resolve_auto

    if not is_auto(cfg.model):
        return
    found = resolve_auto(cfg, source=cfg.ckpt_path or None, fallback_scale=cfg.scale, keep_weights=not cfg.ckpt_path)
    wanted = cfg.benchmarks.scales
    if found.entry.scale_arg and wanted is not None and {int(s) for s in wanted} != {found.scale}:
        raise ConfigError(f"benchmarks.scales={list(wanted)}: the network in the file is x{found.scale} only")
    validate(cfg, EvaluateConfig, trainer_key=None)


def evaluate(cfg: DictConfig, out_dir: str | Path) -> list[SetScore]:
    """Score ``cfg.model`` on every set x scale; write ``results.csv``, ``per_image.csv``, ``results.md`` and
    sample crops into ``out_dir``; print the Markdown table. Returns the per-set means.

    With a non-empty ``methods`` list every method is scored instead of ``model`` (see :func:`evaluate_methods`).
    """
    from src.config.validation import drop_training_groups

    drop_training_groups(cfg)
    if cfg.get("methods"):
        from src.evaluation.compare import evaluate_methods

        return evaluate_methods(cfg, out_dir)
    validate(cfg, EvaluateConfig, trainer_key=None)  # with benchmarks.*, samples.*, compare.*
    resolve_weight_keys(cfg.model, "weights")  # a file or a model name (src.zoo)
    check_tiling(cfg)
    lr_options = benchmark_options(cfg.benchmarks)
    _resolve_auto(cfg)
    out_dir = Path(out_dir)
    device = pick_device(cfg.device)
    suite = build_metric_suite(cfg.metrics)
    postprocess = cfg.postprocess or cfg.model.get("postprocess", "none")
    name = cfg.model.name + ("+ens" if cfg.ensemble else "") + ("+bp" if postprocess == "back_projection" else "")
    scores: list[ImageScore] = []
    params: dict[int, int] = {}
    wanted = set(cfg.samples.images)
    for scale in _scales(cfg):
        model_cfg = OmegaConf.merge(cfg.model, {"scale": scale})
        model = build_eval_model(model_cfg, scale, cfg.ckpt_path, channels_last=cfg.channels_last).to(device)
        params[scale] = count_parameters(model)
        model = with_inference_options(model, scale, cfg.ensemble, postprocess, cfg.bp_iterations, cfg.tile,
                                       cfg.tile_overlap)
        for set_name in cfg.benchmarks.sets:
            images = load_benchmark_set(cfg.benchmarks.root, set_name, scale, **lr_options)
            set_scores, kept = score_set(model, images, name, set_name, scale, suite, device, keep_outputs=wanted,
                                          progress=True)
            scores.extend(set_scores)
            for img in images:
                if img.name in kept:
                    save_sample(img, kept[img.name], scale, name, cfg.samples.crop, out_dir / "samples", set_name)
    summary = summarize(scores, suite)
    for row in summary:
        row.values["params"] = params[row.scale]
    write_csv(summary, out_dir / "results.csv")
    write_csv(scores, out_dir / "per_image.csv")
    table = markdown_table(summary)
    write_text(out_dir / "results.md", table + "\n")
    print(table)
    print(f"\nWrote {out_dir / 'results.csv'} and per_image.csv")
    return summary


def save_sample(img, sr: torch.Tensor, scale: int, method: str, crop: int, folder: Path, set_name: str) -> None:
    from src.degradations import imresize

    hr = img.hr if img.hr.shape[0] == 3 else img.hr.expand(3, -1, -1)
    lr = img.lr if img.lr.shape[0] == 3 else img.lr.expand(3, -1, -1)
    bicubic = imresize(lr, float(scale)).clamp(0, 1)
    panel = comparison_panel([bicubic, sr, hr], ["bicubic", method, "HR"], crop=detailed_crop(hr, crop))
    save_panel(panel, folder / f"{set_name}_{Path(img.name).stem}_x{scale}_{method}.png")
