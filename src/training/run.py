"""What ``python -m src.train`` does: validate the config, build data/method/trainer from it, fit, report."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import Callback, LearningRateMonitor
from omegaconf import DictConfig, OmegaConf

from src.config.schema import RecipeConfig, TrainConfig, keys_of
from src.config.validation import ConfigError, check_keys, validate
from src.data.batch import collate
from src.evaluation.heldout import heldout_report
from src.methods.guard import DivergenceError, guard_settings
from src.metrics.suite import build_metric_suite
from src.storage.atomic import check_writable
from src.training.callbacks import (
    AtomicCheckpointIO,
    BestCheckpoint,
    EpochTimer,
    LastCheckpoint,
    NetworkSummary,
    ObjectiveTracker,
    StepProgressBar,
    ValidationPanels,
)
from src.training.cluster import (
    check_objective,
    hydra_launcher,
    objective_value,
    resume_from,
    slurm_trainer_resources,
)
from src.training.loggers import finish_wandb
from src.weights.checkpoints import check_resume_checkpoint
from src.weights.writing import export_weights, metadata
from src.zoo import resolve_weight_keys

log = logging.getLogger(__name__)

EXIT_CODES = {"SIGTERM": 143, "SIGINT": 130}  # 128 + signal number, as a shell reports a signal death


def run_dir() -> Path:
    """The Hydra run folder of this job (``hydra.run.dir`` / the sweep subdir)."""
    try:
        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # not running under Hydra (tests that call ``train`` directly)
        return Path.cwd()


class _DropAdvertisement(logging.Filter):
    """Lightning's tip to install its cloud logger (litlogger) at every Trainer construction, and its note that
    our model summary replaces its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "litlogger" not in message and "Skipping setting a default `ModelSummary`" not in message


def _route_lightning_logs() -> None:
    """Lightning adds its own console handlers (``lightning``: ``INFO: …``; ``lightning.pytorch`` /
    ``lightning.fabric`` when no root handler exists); drop them so each message is printed once (by Hydra's
    handler, which also writes it to the run folder's log file), and drop Lightning's litlogger advertisement.
    Warnings that do not apply to step-budget runs are silenced (see :func:`_quiet_inapplicable_warnings`)."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropAdvertisement) for f in rank_zero.filters):
        rank_zero.addFilter(_DropAdvertisement())
    _quiet_inapplicable_warnings()


def _quiet_inapplicable_warnings() -> None:
    """Lightning warns when an epoch has fewer batches than ``log_every_n_steps``, but it logs by global step
    (counted across epochs), so short epochs (the sample data: 28 batches) lose nothing; and its model-summary
    code uses a torch pytree API that torch deprecated (nothing a user can change)."""
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging")
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")


def _share_cpu_between_processes(trainer_cfg: DictConfig) -> None:
    """With several CPU processes (DDP on CPU), give each an equal share of the cores: oversubscribed
    intra-op threads slow every op down by orders of magnitude on small machines."""
    devices = trainer_cfg.get("devices", 1)
    on_cpu = trainer_cfg.get("accelerator") == "cpu" or not torch.cuda.is_available()
    if on_cpu and isinstance(devices, int) and devices > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // devices))


def build_strategy(cfg: DictConfig, method_cls: type | None = None, trainer_cfg: DictConfig | None = None) -> Any:
    """``strategy`` group -> a Lightning strategy object, or its registered name (``auto``).

    ``auto`` with several devices/nodes and a method that leaves parameters without gradients in some backward
    passes (GAN methods: ``method_cls.needs_find_unused``) becomes DDP with ``find_unused_parameters=True``,
    so that ``python -m src.train model=rrdb_gan trainer.devices=2`` runs as is."""
    if "_target_" in cfg:
        return instantiate(cfg)
    name = cfg.get("name")
    if name != "auto":
        raise ConfigError(f"strategy.name={name!r}: only 'auto' has no _target_; see conf/strategy/")
    devices = trainer_cfg.get("devices", 1) if trainer_cfg is not None else 1
    nodes = trainer_cfg.get("num_nodes", 1) if trainer_cfg is not None else 1
    several = nodes > 1 or devices in ("auto", -1) or (isinstance(devices, int) and devices > 1) or (
        not isinstance(devices, (int, str)) and len(devices) > 1)
    if several and getattr(method_cls, "needs_find_unused", False):
        from lightning.pytorch.strategies import DDPStrategy

        log.info("strategy=auto with several devices and a GAN method: DDP with find_unused_parameters=True")
        return DDPStrategy(find_unused_parameters=True)
    return "auto"


def check_sharding(strategy: Any, method_cls: type, model_cfg: DictConfig) -> None:
    """FSDP shards parameters into flat buffers: an EMA copy (``model.ema_decay``) would be a second FSDP-less
    module whose ``lerp`` meets shards of another layout, and GAN methods toggle ``requires_grad`` of the
    discriminator inside flat parameters and step two optimizers by hand. Neither is supported: refuse before
    anything runs. (Every network here fits one GPU with DDP: the largest, EDSR, is 43 M parameters.)"""
    from lightning.pytorch.strategies import FSDPStrategy

    if not isinstance(strategy, FSDPStrategy):
        return
    name = model_cfg.get("name", "?")
    if getattr(method_cls, "needs_find_unused", False):
        raise ConfigError(f"strategy=fsdp cannot train model={name} (a GAN: manual optimization of two networks "
                          "with the discriminator frozen in the generator step); use strategy=ddp_find_unused")
    if model_cfg.get("ema_decay") is not None:
        raise ConfigError(f"strategy=fsdp cannot keep model.ema_decay={model_cfg.get('ema_decay')} (an EMA copy of "
                          f"sharded weights) for model={name}; use strategy=ddp, or model.ema_decay=null")


def build_loggers(cfg: DictConfig | None) -> list:
    if not cfg:
        return []
    return [instantiate(node) for node in cfg.values()]


def check_run_settings(cfg: DictConfig) -> None:
    """The flag ``checkpoint.save_last``, the ``guard`` settings (their keys are checked against
    :class:`~src.config.schema.TrainConfig`, their numbers with the others: ``src.config.ranges.RANGES``) and
    the keys of ``model.recipe`` (:class:`~src.config.schema.RecipeConfig`)."""
    if isinstance(cfg.model.get("recipe"), DictConfig):
        check_keys(cfg.model.recipe, "model.recipe", keys_of(RecipeConfig), "the model's training recipe")
    if not isinstance(cfg.checkpoint.save_last, bool):
        raise ConfigError(f"checkpoint.save_last={cfg.checkpoint.save_last!r}: expected true or false")
    if cfg.get("guard") is not None:
        try:
            guard_settings(OmegaConf.to_container(cfg.guard))
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc


def build_callbacks(cfg: DictConfig, val_name: str, has_loggers: bool) -> list[Callback]:
    """best.ckpt (highest finite validation PSNR), last.ckpt (always the latest state), panels, timing, LR."""
    monitor = f"val/{val_name}/psnr_y"
    checkpoints = run_dir() / "checkpoints"
    callbacks: list[Callback] = [
        BestCheckpoint(
            dirpath=checkpoints,
            filename="best",
            monitor=monitor,
            mode="max",
            save_top_k=cfg.checkpoint.save_top_k,
            save_last=False,  # LastCheckpoint keeps last.ckpt (Lightning's follows best saves only)
            auto_insert_metric_name=False,
        ),
        ValidationPanels(num_images=cfg.report.panel_images, crop=cfg.report.crop),
        EpochTimer(),
    ]
    if cfg.checkpoint.save_last:
        callbacks.append(LastCheckpoint(checkpoints, every_n_train_steps=cfg.checkpoint.every_n_train_steps))
    if has_loggers:
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    if cfg.trainer.get("enable_progress_bar", True):
        callbacks.append(StepProgressBar())
    if cfg.trainer.get("enable_model_summary", True):
        callbacks.append(NetworkSummary())
    return callbacks


def train(cfg: DictConfig) -> float | None:
    """Run one training job described by a composed ``conf/train.yaml``; returns the objective for sweepers (the
    best ``val/<set>/<objective>``, see :func:`objective_value`), or ``None`` when nothing was trained."""
    from src.weights.auto_model import is_auto, resolve_auto

    if is_auto(cfg.model):  # fine-tune the network in model.weights with its (or model.option's) recipe
        resolve_auto(cfg, fallback_scale=cfg.scale)
    validate(cfg, TrainConfig)
    resolve_weight_keys(cfg.model, "weights", "pretrained")  # files or model names (src.zoo)
    metric, direction = check_objective(cfg)
    check_run_settings(cfg)
    method_cls = get_class(cfg.model._target_)
    if not getattr(method_cls, "trainable", True) or not issubclass(method_cls, L.LightningModule):
        needs = ""
        if OmegaConf.is_dict(cfg.model.get("generator")):  # PULSE: the pretrained generator it searches
            needs = f" model.generator.weights={cfg.model.generator.get('weights') or '<file or zoo name>'}"
        print(
            f"model={cfg.model.name} has no parameters to train. "
            f"Score it with: python -m src.evaluate model={cfg.model.name}{needs}"
        )
        return None

    slurm_trainer_resources(cfg.trainer, hydra_launcher())
    strategy = build_strategy(cfg.strategy, method_cls, cfg.trainer)
    check_sharding(strategy, method_cls, cfg.model)
    _route_lightning_logs()
    _share_cpu_between_processes(cfg.trainer)
    L.seed_everything(cfg.seed, workers=True)
    out = run_dir()
    degradation = instantiate(cfg.degradation)
    datamodule = instantiate(cfg.data, degradation=degradation)
    datamodule.check_files()
    guard = OmegaConf.to_container(cfg.guard) if cfg.get("guard") is not None else None
    method = instantiate(cfg.model, _recursive_=False, guard=guard, metrics=cfg.metrics,
                         channels_last=cfg.channels_last)
    if cfg.ckpt_path and str(cfg.ckpt_path) not in ("last", "hpc", "registry"):  # Lightning's keywords
        check_resume_checkpoint(cfg.ckpt_path, method)
    check_writable(out / "checkpoints", checkpoint_bytes(method), what="run")
    loggers = build_loggers(cfg.get("logger"))
    trainer_kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    tracker = ObjectiveTracker(f"val/{datamodule.val_name}/{metric}", direction)
    callbacks = [*build_callbacks(cfg, datamodule.val_name, bool(loggers)), tracker]
    trainer = L.Trainer(
        **trainer_kwargs,
        strategy=strategy,
        logger=loggers or False,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(out),
    )
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    try:
        _fit(trainer, method, datamodule, resume_from(cfg, out), callbacks)
        checkpoint = trainer.checkpoint_callback
        if trainer.is_global_zero and cfg.report.enabled:
            _final_report(cfg, method, datamodule, degradation, checkpoint, out, trainer.strategy.root_device)
        objective = objective_value(tracker)
    except BaseException:
        finish_wandb(loggers, exit_code=1)
        raise
    finish_wandb(loggers)  # one W&B run per job: the next job of a multirun starts its own
    return objective


def checkpoint_bytes(method: torch.nn.Module) -> int:
    """Free space a run folder needs for its checkpoints: best.ckpt and last.ckpt, each written beside its previous
    version, each holding the parameters and buffers plus ~2 optimizer states per parameter (Adam) — 2 x 2 x 3 x
    the parameter bytes, plus 1 MiB."""
    params = sum(p.numel() * p.element_size() for p in method.parameters())
    buffers = sum(b.numel() * b.element_size() for b in method.buffers())
    return 4 * (3 * params + buffers) + 2**20


def _fit(trainer: L.Trainer, method, datamodule, ckpt_path: str | None, callbacks: list[Callback]) -> None:
    """``trainer.fit``; a stop by SIGTERM / SIGINT exits with 143 / 130 after naming the saved last.ckpt, a
    divergence stop names the checkpoints that are kept."""
    last = next((c for c in callbacks if isinstance(c, LastCheckpoint)), None)
    try:
        trainer.fit(method, datamodule=datamodule, ckpt_path=ckpt_path)
    except SystemExit:  # Lightning: SIGTERMException on SIGTERM, sys.exit(1) after Ctrl+C
        if last is None or last.interrupted_by is None:
            raise
        if trainer.is_global_zero:
            where = (f"{last.path} holds step {last.saved_step}; resume with: python -m src.train <the same "
                     f"overrides> ckpt_path={last.path}") if last.saved_step is not None else "nothing was saved"
            log.warning("stopped by %s at step %d: %s", last.interrupted_by, trainer.global_step, where)
        raise SystemExit(EXIT_CODES[last.interrupted_by]) from None
    except DivergenceError as exc:
        kept = []
        if last is not None and last.saved_step is not None:
            kept.append(f"{last.path} (step {last.saved_step})")
        best = trainer.checkpoint_callback
        if best is not None and best.best_model_path:
            kept.append(f"{best.best_model_path} (val PSNR {float(best.best_model_score):.2f} dB)")
        raise DivergenceError(f"{exc}. Kept: {', '.join(kept) if kept else 'no checkpoint yet'}") from None


def _weights_finite(module: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in module.state_dict().values() if t.is_floating_point())


@torch.no_grad()
def _output_finite(method: torch.nn.Module, item: dict, degradation) -> bool:
    """Whether the (eval-mode, CPU) model gives a finite SR image for one held-out item: finite weights can still
    overflow (a diverged network at 1e30)."""
    batch = collate([item], training=False).to_float()
    if batch.lr is None:
        batch = degradation(batch)
    return bool(torch.isfinite(method(batch.lr)).all())


def _final_report(cfg, method, datamodule, degradation, checkpoint, out: Path,
                  device: torch.device | str = "cpu") -> None:
    """Reload the best weights and print the held-out table next to bicubic (rank 0 only), on the training
    ``device``: the held-out LR images are then degraded on the device validation used, and the numbers equal
    the last ``val/*`` of the same weights."""
    if checkpoint is not None and checkpoint.best_model_path:
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        method.load_state_dict(state)
        which = f"best checkpoint ({Path(checkpoint.best_model_path).name})"
    else:
        which = "final weights"
    method = method.to("cpu").eval()
    datamodule.setup("validate")
    items = [datamodule.val_set[i] for i in range(len(datamodule.val_set))]
    if not _weights_finite(method) or not _output_finite(method, items[0], degradation):
        log.error("the SR output of the %s is NaN/inf (the network diverged): no best_basicsr.pth and no held-out "
                  "report; see README, When things go wrong", which)
        return
    ema = method.sr_ema.net.state_dict() if getattr(method, "sr_ema", None) is not None else None
    hp = method.hparams
    exported, clients = export_weights(method.net.state_dict(), out / "checkpoints" / "best_basicsr.pth", ema,
                                       metadata(hp["name"], hp["arch"], hp["scale"], hp["input"], hp["color"]))
    log.info("weights of the %s ({params, params_ema}): %s; read by %s", which, exported, clients)
    method = method.to(device)
    summary, table = heldout_report(
        method,
        items,
        degradation,
        scale=cfg.scale,
        method_name=cfg.model.name,
        set_name=datamodule.val_name,
        out_dir=out,
        suite=build_metric_suite(cfg.metrics),
        panel_images=cfg.report.panel_images,
        crop=cfg.report.crop,
        device=device,
    )
    _log_heldout(method, summary, cfg.model.name)
    _warn_below_bicubic(summary, cfg.model.name, which)
    print(f"\nHeld-out PSNR / SSIM (Y, {cfg.scale} px shaved) of the {which}, x{cfg.scale}:\n{table}")
    print("\n" + run_folder_summary(out, clients))


def run_folder_summary(out: Path, clients: str | None = None) -> str:
    """What a finished run left in ``out``, listing only files that exist (a ``fast_dev_run`` writes no
    checkpoint), and the command that uploads an offline W&B run."""
    names = ["results.csv", "per_image.csv", "comparison.png", "csv/metrics.csv", "tensorboard"]
    present = [n for n in names if (out / n).exists()]
    ckpts = sorted(p.name for p in (out / "checkpoints").glob("*") if p.is_file())  # no folder: nothing
    lines = [f"Run folder: {out}"]
    if present:
        lines.append("  " + ", ".join(present))
    if ckpts:
        readers = clients or "see src.export"
        note = f" (best_basicsr.pth read by: {readers})" if "best_basicsr.pth" in ckpts else ""
        lines.append(f"  checkpoints/: {', '.join(ckpts)}{note}")
    offline = sorted((out / "wandb").glob("offline-run-*"))
    if offline:
        lines.append(f"  W&B offline run; upload with: wandb sync {offline[-1]}")
    return "\n".join(lines)


def _warn_below_bicubic(summary: list, method_name: str, which: str) -> None:
    """A trained model that scores below plain bicubic did not learn (too few steps, or it diverged): say so."""
    psnr = {row.method: row.values.get("psnr_y") for row in summary}
    ours, bicubic = psnr.get(method_name), psnr.get("bicubic")
    if ours is not None and bicubic is not None and float(ours) < float(bicubic):
        log.warning("the %s scores %.2f dB, %.2f dB below bicubic (%.2f dB): the network has not learned (too few "
                    "steps, or training diverged: see README, When things go wrong)",
                    which, float(ours), float(bicubic) - float(ours), float(bicubic))


def _log_heldout(method, summary: list, method_name: str) -> None:
    """The held-out report to the run's loggers: ``test/<set>/<metric>`` of the trained model (W&B: the run's
    summary, plus a ``wandb.Table`` ``test/results`` of every row, bicubic included; other loggers:
    ``log_metrics`` at the last step)."""
    loggers = list(method.loggers)  # [] when the method is not attached to a trainer
    if not loggers:
        return
    from lightning.pytorch.loggers import WandbLogger

    final = {
        f"test/{row.set}/{name}": float(value)
        for row in summary if row.method == method_name
        for name, value in row.values.items() if value is not None and not name.startswith("_")
    }
    metrics = list(dict.fromkeys(k for row in summary for k in row.values if not k.startswith("_")))
    columns = ["method", "set", "scale", *metrics, "num_images"]
    data = [[row.method, row.set, row.scale, *(row.values.get(m) for m in metrics), row.num_images] for row in summary]
    step = method.trainer.global_step
    for logger in loggers:
        try:
            if isinstance(logger, WandbLogger):
                logger.log_table(key="test/results", columns=columns, data=data, step=step)
                for key, value in final.items():
                    logger.experiment.summary[key] = value
            else:
                logger.log_metrics(final, step=step)
                logger.save()
        except Exception as exc:  # noqa: BLE001 - a logging problem must not lose the finished run
            log.warning("could not log the held-out results to %s: %s", type(logger).__name__, exc)
