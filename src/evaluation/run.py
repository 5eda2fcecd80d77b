"""What ``python -m src.evaluate`` does: score one method on benchmark sets and scales, write the tables."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from src.checkpoints import build_eval_model, read_hparams
from src.config import validate
from src.evaluation.benchmark import load_benchmark_set, score_set
from src.evaluation.metric_suite import build_metric_suite
from src.evaluation.panels import comparison_panel, detailed_crop, save_panel
from src.evaluation.results import ImageScore, SetScore, markdown_table, summarize, write_csv
from src.metrics.efficiency import count_parameters

EVALUATE_KEYS = (
    "model", "scale", "ckpt_path", "device", "channels_last", "run_name", "metrics", "benchmarks", "samples",
    "ensemble", "postprocess", "bp_iterations",
)
POSTPROCESS = ("none", "back_projection")


def with_inference_options(model, scale: int, ensemble: bool, postprocess: str, bp_iterations: int):
    """LR -> SR with the x8 self-ensemble and/or iterative back-projection around ``model``."""
    if postprocess not in POSTPROCESS:
        raise ValueError(f"postprocess={postprocess!r}: expected one of {POSTPROCESS}")
    if not ensemble and postprocess == "none":
        return model
    from src.inference.back_projection import back_project
    from src.inference.ensemble import self_ensemble

    def run(lr: torch.Tensor) -> torch.Tensor:
        sr = self_ensemble(model, lr) if ensemble else model(lr)
        if postprocess == "back_projection":
            sr = back_project(sr, lr, scale, bp_iterations)
        return sr

    return run
BENCHMARK_KEYS = ("root", "sets", "scales", "lr", "matlab")
SAMPLE_KEYS = ("images", "crop")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _scales(cfg: DictConfig) -> list[int]:
    if cfg.benchmarks.scales is not None:
        return [int(s) for s in cfg.benchmarks.scales]
    if not getattr(get_class(cfg.model._target_), "trainable", True):
        return [2, 3, 4]
    source = cfg.ckpt_path or cfg.model.get("weights")  # build_eval_model rejects both at once
    hparams = read_hparams(source) if source else None
    return [int(hparams["scale"])] if hparams else [int(cfg.scale)]


def evaluate(cfg: DictConfig, out_dir: str | Path) -> list[SetScore]:
    """Score ``cfg.model`` on every set x scale; write ``results.csv``, ``per_image.csv``, ``results.md`` and
    sample crops into ``out_dir``; print the Markdown table. Returns the per-set means."""
    from src.config import check_keys

    validate(cfg, EVALUATE_KEYS, trainer_key=None)
    check_keys(cfg.benchmarks, "benchmarks", BENCHMARK_KEYS, "the benchmark settings")
    check_keys(cfg.samples, "samples", SAMPLE_KEYS, "the sample-crop settings")
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
        model = build_eval_model(model_cfg, scale, cfg.ckpt_path).to(device)
        params[scale] = count_parameters(model)
        model = with_inference_options(model, scale, cfg.ensemble, postprocess, cfg.bp_iterations)
        for set_name in cfg.benchmarks.sets:
            images = load_benchmark_set(
                cfg.benchmarks.root, set_name, scale, cfg.benchmarks.lr, cfg.benchmarks.matlab
            )
            set_scores, kept = score_set(model, images, name, set_name, scale, suite, device, keep_outputs=wanted)
            scores.extend(set_scores)
            for img in images:
                if img.name in kept:
                    _save_sample(img, kept[img.name], scale, name, cfg.samples.crop, out_dir / "samples", set_name)
    summary = summarize(scores, suite)
    for row in summary:
        row.values["params"] = params[row.scale]
    write_csv(summary, out_dir / "results.csv")
    write_csv(scores, out_dir / "per_image.csv")
    table = markdown_table(summary)
    (out_dir / "results.md").write_text(table + "\n")
    print(table)
    print(f"\nWrote {out_dir / 'results.csv'} and per_image.csv")
    return summary


def _save_sample(img, sr: torch.Tensor, scale: int, method: str, crop: int, folder: Path, set_name: str) -> None:
    from src.degradations import imresize

    hr = img.hr if img.hr.shape[0] == 3 else img.hr.expand(3, -1, -1)
    lr = img.lr if img.lr.shape[0] == 3 else img.lr.expand(3, -1, -1)
    bicubic = imresize(lr, float(scale)).clamp(0, 1)
    panel = comparison_panel([bicubic, sr, hr], ["bicubic", method, "HR"], crop=detailed_crop(hr, crop))
    save_panel(panel, folder / f"{set_name}_{Path(img.name).stem}_x{scale}_{method}.png")
