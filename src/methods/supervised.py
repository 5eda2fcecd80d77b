"""Supervised SR training (automatic optimization): one generator, a weighted sum of losses, paper-protocol
validation."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn

from src.config.schema import RecipeConfig, keys_of
from src.data.batch import SRBatch
from src.degradations import imresize
from src.imaging.colorspace import rgb_to_y_bt601_studio
from src.losses import PixelLoss
from src.methods.guard import (
    LossGrowthMonitor,
    NonFiniteGuard,
    guard_settings,
    restore_running_stats,
    snapshot_running_stats,
)
from src.methods.resume import reconcile_lr_schedulers
from src.methods.sr_forward import SRForward
from src.metrics.suite import build_metric_suite
from src.weights.checkpoints import load_into

INPUT_MODES = ("lr", "bicubic")
COLOR_MODES = ("rgb", "y")

log = logging.getLogger(__name__)


def _plain(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


class SupervisedSR(L.LightningModule):
    """Trains ``arch`` with a loss (a pixel loss or a weighted sum of terms) on (LR, HR) batches made by the
    DataModule.

    Args:
        name: method name used in tables (``espcn``, ``srcnn`` …).
        arch: Hydra config of the network (``_target_`` + constructor arguments).
        scale: SR scale factor.
        input: ``"lr"`` (the network upsamples) or ``"bicubic"`` (the network sees the MATLAB-bicubic
            upsampled LR, as SRCNN and VDSR).
        color: ``"rgb"`` or ``"y"`` (the network sees and predicts the MATLAB Y channel; chroma comes from
            bicubic, as in the SRCNN/FSRCNN/ESPCN papers).
        loss: a pixel loss name, ``l1`` | ``mse`` | ``charbonnier``, or ``{term name: Hydra config}`` of loss
            modules (``src.losses``: PixelLoss, PerceptualLoss, MixLoss, MSSSIMLoss, TVLoss …), each with its
            own ``loss_weight``; the total is their sum and every term is logged as ``train/<term name>``.
            Computed on Y for ``color="y"`` (terms that need RGB, like VGG features, are refused there).
        optimizer: Hydra config of a ``torch.optim`` class with ``_partial_: true``.
        lr_scheduler: Hydra config of a ``torch.optim.lr_scheduler`` class with ``_partial_: true``, stepped
            every optimizer step; ``None`` for a constant rate.
        lr_multipliers: ``{parameter-name prefix: factor}`` for per-layer learning rates (SRCNN trains its
            last layer 10x slower).
        recipe: the paper's ``batch_size``, ``patch_size`` (HR px), ``max_steps`` and optional ``train_scales``
            (multi-scale training), read by the data and
            trainer configs through interpolation.
        metrics: the ``metrics`` config (names, y_rounding, …) for validation: every per-image metric is
            logged as ``val/<dataset>/<metric>`` (mean over the validation images), set-level ones (rmse, pi)
            at the end of validation (per process under DDP).
        channels_last: run the network in ``channels_last`` memory format (faster convolutions on CPU).
        grad_clip_theta: VDSR's adjustable gradient clipping: gradients are clipped to [-θ/γ, θ/γ] with γ the
            current learning rate (so a high rate gets tight clipping). ``None`` leaves clipping to
            ``trainer.gradient_clip_val``; both at once is an error.
        grad_clip_mode: ``"value"`` clips every gradient element to ±θ/γ (the paper's wording); ``"norm"``
            clips the global gradient norm to θ/γ (what the widely used PyTorch VDSR port does, at θ/γ = 0.4).
        weights: a weights file to initialise the network from (fine-tuning, or a pretrained model to evaluate):
            our Lightning ``.ckpt``, BasicSR ``.pth`` (``params_ema`` preferred), ``.safetensors``, official
            EDSR/RCAN/ESRGAN layouts or the official VDSR ``.mat`` (see :mod:`src.weights.checkpoints`); loaded with
            ``strict=True``. Not saved in the hyperparameters: a checkpoint of this module holds the weights.
        ema_decay: keep an exponential moving average of the network weights (``sr_ema``; BasicSR/Real-ESRGAN use
            0.999), updated after every optimizer step; in eval mode (validation, the final report, export) the
            module runs the EMA weights. ``None``: no EMA.
        content_target_usm: compute the loss against the USM-sharpened HR (``batch.hr_usm``, made by the
            Real-ESRGAN degradation), as Real-ESRNet/Real-ESRGAN do; the plain HR when the batch has none.
        guard: the divergence guard (``guard`` of ``conf/train.yaml``, :mod:`src.methods.guard`): a non-finite
            loss skips its optimizer update (weights, optimizer state and EMA untouched; the step still counts
            in ``global_step`` and the LR schedule) with a warning, ``max_nonfinite_steps`` in a row raise
            :class:`~src.methods.guard.DivergenceError`; a finite loss that grows ``loss_growth``-fold is
            warned about. Not a hyperparameter (not saved in checkpoints).
    """

    net_prefix = "sr.net."  # where the network's keys start in state_dict() and checkpoints (self.sr.net)

    def __init__(
        self,
        name: str,
        arch: Mapping,
        scale: int,
        input: str = "lr",
        color: str = "rgb",
        loss: str | Mapping = "l1",
        optimizer: Mapping | None = None,
        lr_scheduler: Mapping | None = None,
        lr_multipliers: Mapping[str, float] | None = None,
        recipe: Mapping[str, int] | None = None,
        metrics: Mapping | None = None,
        channels_last: bool = False,
        grad_clip_theta: float | None = None,
        grad_clip_mode: str = "value",
        weights: str | None = None,
        ema_decay: float | None = None,
        content_target_usm: bool = False,
        guard: Mapping | None = None,
    ) -> None:
        super().__init__()
        self.guard_settings = guard_settings(_plain(guard))
        self.nonfinite_guard = NonFiniteGuard(self.guard_settings["max_nonfinite_steps"])
        self.loss_monitor = LossGrowthMonitor("the training loss", self.guard_settings["window"],
                                              self.guard_settings["loss_growth"])
        self._skip_pending = False  # a non-finite loss since the last optimizer step
        self._skipped_last_step = False
        if ema_decay is not None and not 0 < ema_decay < 1:
            raise ValueError(f"model.ema_decay must be in (0, 1) or null, got {ema_decay}")
        if input not in INPUT_MODES:
            raise ValueError(f"model.input={input!r}: expected one of {INPUT_MODES}")
        if grad_clip_mode not in ("value", "norm"):
            raise ValueError(f"model.grad_clip_mode={grad_clip_mode!r}: expected 'value' or 'norm'")
        if color not in COLOR_MODES:
            raise ValueError(f"model.color={color!r}: expected one of {COLOR_MODES}")
        recipe_keys = keys_of(RecipeConfig)
        unknown = set(recipe or {}) - set(recipe_keys)
        if unknown:
            raise ValueError(f"model.recipe has unknown keys {sorted(unknown)}; valid keys: {list(recipe_keys)}")
        self.save_hyperparameters(  # not sent to the loggers: src.train logs the whole composed config once
            {
                "name": name,
                "arch": _plain(arch),
                "scale": scale,
                "input": input,
                "color": color,
                "loss": _plain(loss),
                "optimizer": _plain(optimizer),
                "lr_scheduler": _plain(lr_scheduler),
                "lr_multipliers": _plain(lr_multipliers),
                "recipe": _plain(recipe),
                "metrics": _plain(metrics),
                "channels_last": channels_last,
                "grad_clip_theta": grad_clip_theta,
                "grad_clip_mode": grad_clip_mode,
                "ema_decay": ema_decay,
                "content_target_usm": content_target_usm,
            },
            logger=False,
        )
        net: nn.Module = instantiate(self.hparams.arch)
        if weights:
            load_into(net, weights, (self.net_prefix,))  # logs the detected container and layout
        self.sr = SRForward(net, scale=scale, input=input, color=color, channels_last=channels_last)
        self.sr_ema: SRForward | None = None
        if ema_decay is not None:
            self.sr_ema = copy.deepcopy(self.sr).requires_grad_(False)
        self.losses = self._build_losses(self.hparams.loss, color)
        self.val_name = "val"
        self.metric_suite = build_metric_suite(self.hparams.metrics or {})
        self._val_values: list[dict[str, float]] = []

    @property
    def net(self) -> nn.Module:
        return self.sr.net

    def forward(self, lr: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        """LR (N, 3, h, w) in [0, 1] -> SR (N, 3, h*scale, w*scale), not clamped. In eval mode with EMA enabled
        the EMA weights run."""
        if self.sr_ema is not None and not self.training:
            return self.sr_ema(lr, scale)
        return self.sr(lr, scale)

    # ---- training ---------------------------------------------------------------------------------------
    def content_loss(
        self, pred: torch.Tensor, target: torch.Tensor, prefix: str = "", batch_size: int = 1
    ) -> torch.Tensor:
        """Weighted sum of ``self.losses`` on (pred, target); each term logged as ``train/<prefix><term>``."""
        total = 0.0
        for term_name, term in self.losses.items():
            value = term(pred, target)
            parts = value if isinstance(value, tuple) else (value,)
            suffixes = ("", "_style") if isinstance(value, tuple) else ("",)
            for suffix, part in zip(suffixes, parts):
                if part is not None:
                    self.log_term(f"{prefix}{term_name}{suffix}", part, batch_size, prog_bar=suffix == "")
                    total = total + part
        return total

    def log_term(self, name: str, value: torch.Tensor, batch_size: int, prog_bar: bool = False) -> None:
        """Log ``train/<name>`` every step (loggers read it every ``trainer.log_every_n_steps``); with ``prog_bar``
        also ``<name>`` on the progress bar, but only every ``log_every_n_steps`` steps: the bar turns its values
        into Python numbers, one host-device synchronisation per term and step otherwise."""
        self.log(f"train/{name}", value, batch_size=batch_size, sync_dist=True)  # the global batch's loss under DDP
        try:
            interval = max(1, int(self.trainer.log_every_n_steps or 1))
        except RuntimeError:  # not attached to a trainer (a direct call)
            interval = 1
        if prog_bar and self.global_step % interval == 0:
            self.log(name, value.detach(), prog_bar=True, logger=False, batch_size=batch_size)

    def training_step(self, batch: SRBatch, batch_idx: int) -> torch.Tensor:
        stats = snapshot_running_stats(self.sr)
        lr, hr = batch.lr, batch.hr
        if self.hparams.content_target_usm and batch.hr_usm is not None:
            hr = batch.hr_usm
        scale = batch.scale  # multi-scale training (VDSR): the scale drawn for this batch
        if self.hparams.color == "y":
            pred, target = self.sr.predict_y(lr, scale), rgb_to_y_bt601_studio(hr)
        else:
            pred, target = self.sr(lr, scale), hr
        if isinstance(pred, (list, tuple)):
            total = self.multi_level_loss(pred, target, batch_size=lr.shape[0])
        else:
            total = self.content_loss(pred, target, batch_size=lr.shape[0])
        if len(self.losses) > 1 or isinstance(pred, (list, tuple)):
            self.log("train/loss", total, batch_size=lr.shape[0], sync_dist=True)
        if not self.nonfinite_guard.check(self, {"loss": total}):
            self._skip_pending = True  # optimizer_step drops this update
            restore_running_stats(stats)
            self.log("train/skipped_steps", float(self.nonfinite_guard.skipped), batch_size=lr.shape[0])
        else:
            message = self.loss_monitor.update(self.global_step, total)
            if message and self.global_rank == 0:
                log.warning(message)
        return total

    def multi_level_loss(self, preds: list[torch.Tensor], target: torch.Tensor, batch_size: int = 1) -> torch.Tensor:
        """Multi-level supervision of progressive networks (LapSRN, MS-LapSRN): the sum over pyramid levels of
        the loss between each level's output (N, C, h_k, w_k) and the target resized to that size with MATLAB
        bicubic (the last level is at the target's size); terms logged as ``train/level<k>_<term>``."""
        total = 0.0
        for k, pred in enumerate(preds, start=1):
            level_target = target
            if tuple(pred.shape[-2:]) != tuple(target.shape[-2:]):
                level_target = imresize(target, size=tuple(pred.shape[-2:]))
            total = total + self.content_loss(pred, level_target, prefix=f"level{k}_", batch_size=batch_size)
        return total

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer, optimizer_closure=None) -> None:
        """Lightning's step, except after a non-finite loss: the closure (training_step, zero_grad, backward)
        still runs on every process, but the optimizer does not step and the gradients are dropped. The step
        still counts (Lightning's ``global_step`` and the LR schedule advance together, as for any step)."""
        if optimizer_closure is None:
            optimizer.step()
            return
        result = optimizer_closure()
        if self._skip_pending:
            self._skip_pending, self._skipped_last_step = False, True
            optimizer.zero_grad(set_to_none=True)
            return
        self._skipped_last_step = False
        optimizer.step(closure=lambda: result)


    @torch.no_grad()
    def update_ema(self) -> None:
        """sr_ema <- decay * sr_ema + (1 - decay) * sr (parameters); buffers (BN statistics) copied."""
        if self.sr_ema is None:
            return
        ema_update = get_ema_multi_avg_fn(float(self.hparams.ema_decay))  # torch's public EMA step (foreach lerp)
        ema_update(list(self.sr_ema.parameters()), [p.detach() for p in self.sr.parameters()], None)
        for ema_buffer, buffer in zip(self.sr_ema.buffers(), self.sr.buffers()):
            ema_buffer.copy_(buffer)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.automatic_optimization and not self._skipped_last_step:
            self.update_ema()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming: make the restored LR schedules follow this run's config (see
        :func:`src.methods.resume.reconcile_lr_schedulers`)."""
        reconcile_lr_schedulers(checkpoint, self._scheduler_configs(), self._scheduler_configs(checkpoint))

    def _scheduler_configs(self, checkpoint: Mapping | None = None) -> list[tuple[str, Mapping]]:
        """(config key, scheduler config) of each LR schedule, in the order of ``configure_optimizers``; of this
        module, or as saved in ``checkpoint``'s hyperparameters."""
        hparams = self.hparams if checkpoint is None else (checkpoint.get("hyper_parameters") or {})
        return [("model.lr_scheduler", hparams["lr_scheduler"])] if hparams.get("lr_scheduler") else []

    @staticmethod
    def _build_losses(loss: str | Mapping, color: str) -> nn.ModuleDict:
        if isinstance(loss, str):
            return nn.ModuleDict({loss: PixelLoss(loss)})
        if not loss:
            raise ValueError("model.loss is empty: give a pixel loss name or a mapping of loss terms")
        terms = nn.ModuleDict({str(name): instantiate(cfg) for name, cfg in loss.items()})
        for name, term in terms.items():
            if color == "y" and getattr(term, "needs_rgb", False):
                raise ValueError(f"model.loss.{name} needs RGB images, but model.color=y trains on Y only")
        return terms

    # ---- validation -------------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        self.val_name = getattr(datamodule, "val_name", "val")

    def validation_step(self, batch: SRBatch, batch_idx: int) -> dict:
        """Scores the SR output in fp32: the network runs with autocast off whatever ``trainer.precision``, so
        ``val/*`` (and checkpoint selection) equal what the final report and ``evaluate`` compute."""
        lr, hr = batch.lr, batch.hr
        with torch.autocast(device_type=lr.device.type, enabled=False):
            sr = self(lr.to(self._param_dtype())).float().clamp(0, 1)
        hr = hr.float()
        values = self.metric_suite.score(sr[0], hr[0], self.hparams.scale)
        index = int(batch.indices[0]) if batch.indices is not None else batch_idx
        self._val_values.append({"_index": index, **values})
        return {"sr": sr, "name": batch.names[0] if batch.names is not None else str(index), **values}

    def _param_dtype(self) -> torch.dtype:
        """dtype of the network's floating parameters (float32 unless a ``-true`` precision converted them)."""
        return next((p.dtype for p in self.sr.parameters() if p.is_floating_point()), torch.float32)

    def on_validation_epoch_end(self) -> None:
        """Set values from the per-image values of every process, each image once (DDP's sampler pads a process's
        share with repeated images: they are dropped by dataset index), so the means are exact and equal to one
        process's. Logged to the loggers at ``trainer.global_step`` (optimizer steps done; the step of the
        checkpoint and of the image panels) and kept in ``callback_metrics`` for checkpointing."""
        per_image = self._val_values
        self._val_values = []
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[list[dict]] = [[] for _ in range(dist.get_world_size())]
            dist.all_gather_object(gathered, per_image)
            per_image = [v for part in gathered for v in part]
        if not per_image:
            return
        unique = {v["_index"]: v for v in per_image}  # repeats dropped; one summation order whatever the world size
        set_values, _ = self.metric_suite.aggregate(
            [{k: v for k, v in unique[i].items() if k != "_index"} for i in sorted(unique)])
        metrics = {f"val/{self.val_name}/{k}": float(v) for k, v in set_values.items() if v is not None}
        for key, value in metrics.items():
            self.log(key, value, prog_bar=key.endswith("/psnr_y"), logger=False)
        if not self.trainer.sanity_checking:
            for logger in self.loggers:
                logger.log_metrics(metrics, step=self.trainer.global_step)

    # ---- optimisation -----------------------------------------------------------------------------------
    def configure_gradient_clipping(
        self, optimizer: torch.optim.Optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
    ) -> None:
        theta = self.hparams.grad_clip_theta
        if theta is None:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
            return
        if gradient_clip_val:
            raise ValueError("set either model.grad_clip_theta (VDSR clipping) or trainer.gradient_clip_val")
        bound = float(theta) / optimizer.param_groups[0]["lr"]
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if self.hparams.grad_clip_mode == "norm":
            torch.nn.utils.clip_grad_norm_(params, bound)
        else:
            torch.nn.utils.clip_grad_value_(params, bound)

    def _param_groups(self) -> list[dict]:
        multipliers = dict(self.hparams.lr_multipliers or {})
        base_lr = float(self.hparams.optimizer.get("lr", 1e-3))
        groups: dict[float, list[nn.Parameter]] = {}
        used = set()
        for name, param in self.net.named_parameters():
            factor = 1.0
            for prefix, value in multipliers.items():
                if name.startswith(prefix):
                    factor = float(value)
                    used.add(prefix)
            groups.setdefault(factor, []).append(param)
        unused = set(multipliers) - used
        if unused:
            names = sorted({n.split(".")[0] for n, _ in self.net.named_parameters()})
            raise ValueError(f"model.lr_multipliers prefixes {sorted(unused)} match no parameter; layers: {names}")
        return [{"params": params, "lr": base_lr * factor} for factor, params in groups.items()]

    def configure_optimizers(self) -> Any:
        if not self.hparams.optimizer:
            raise ValueError("model.optimizer is not set")
        optimizer = instantiate(self.hparams.optimizer)(self._param_groups())
        if not self.hparams.lr_scheduler:
            return optimizer
        scheduler = instantiate(self.hparams.lr_scheduler)(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

