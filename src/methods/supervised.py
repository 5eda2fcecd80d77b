"""Supervised SR training (automatic optimization): one generator, a pixel loss, paper-protocol validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.colorspace import rgb_to_y
from src.evaluation.results import score_image
from src.losses import build_pixel_loss
from src.methods.sr_forward import SRForward

INPUT_MODES = ("lr", "bicubic")
COLOR_MODES = ("rgb", "y")
RECIPE_KEYS = ("batch_size", "patch_size", "max_steps", "train_scales")


def _plain(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


class SupervisedSR(L.LightningModule):
    """Trains ``arch`` with a pixel loss on (LR, HR) batches made by the DataModule.

    Args:
        name: method name used in tables (``espcn``, ``srcnn`` …).
        arch: Hydra config of the network (``_target_`` + constructor arguments).
        scale: SR scale factor.
        input: ``"lr"`` (the network upsamples) or ``"bicubic"`` (the network sees the MATLAB-bicubic
            upsampled LR, as SRCNN and VDSR).
        color: ``"rgb"`` or ``"y"`` (the network sees and predicts the MATLAB Y channel; chroma comes from
            bicubic, as in the SRCNN/FSRCNN/ESPCN papers).
        loss: pixel loss, ``l1`` | ``mse`` | ``charbonnier`` (on Y for ``color="y"``).
        optimizer: Hydra config of a ``torch.optim`` class with ``_partial_: true``.
        lr_scheduler: Hydra config of a ``torch.optim.lr_scheduler`` class with ``_partial_: true``, stepped
            every optimizer step; ``None`` for a constant rate.
        lr_multipliers: ``{parameter-name prefix: factor}`` for per-layer learning rates (SRCNN trains its
            last layer 10x slower).
        recipe: the paper's ``batch_size``, ``patch_size`` (HR px), ``max_steps`` and optional ``train_scales``
            (multi-scale training), read by the data and
            trainer configs through interpolation.
        y_rounding: round Y to integers in validation metrics (MATLAB); ``False`` for BasicSR's convention.
        channels_last: run the network in ``channels_last`` memory format (faster convolutions on CPU).
        grad_clip_theta: VDSR's adjustable gradient clipping: gradients are clipped to [-θ/γ, θ/γ] with γ the
            current learning rate (so a high rate gets tight clipping). ``None`` leaves clipping to
            ``trainer.gradient_clip_val``; both at once is an error.
    """

    def __init__(
        self,
        name: str,
        arch: Mapping,
        scale: int,
        input: str = "lr",
        color: str = "rgb",
        loss: str = "l1",
        optimizer: Mapping | None = None,
        lr_scheduler: Mapping | None = None,
        lr_multipliers: Mapping[str, float] | None = None,
        recipe: Mapping[str, int] | None = None,
        y_rounding: bool = True,
        channels_last: bool = False,
        grad_clip_theta: float | None = None,
    ) -> None:
        super().__init__()
        if input not in INPUT_MODES:
            raise ValueError(f"model.input={input!r}: expected one of {INPUT_MODES}")
        if color not in COLOR_MODES:
            raise ValueError(f"model.color={color!r}: expected one of {COLOR_MODES}")
        unknown = set(recipe or {}) - set(RECIPE_KEYS)
        if unknown:
            raise ValueError(f"model.recipe has unknown keys {sorted(unknown)}; valid keys: {list(RECIPE_KEYS)}")
        self.save_hyperparameters(
            {
                "name": name,
                "arch": _plain(arch),
                "scale": scale,
                "input": input,
                "color": color,
                "loss": loss,
                "optimizer": _plain(optimizer),
                "lr_scheduler": _plain(lr_scheduler),
                "lr_multipliers": _plain(lr_multipliers),
                "recipe": _plain(recipe),
                "y_rounding": y_rounding,
                "channels_last": channels_last,
                "grad_clip_theta": grad_clip_theta,
            }
        )
        net: nn.Module = instantiate(self.hparams.arch)
        self.sr = SRForward(net, scale=scale, input=input, color=color, channels_last=channels_last)
        self.criterion = build_pixel_loss(loss)
        self.val_name = "val"

    @property
    def net(self) -> nn.Module:
        return self.sr.net

    def forward(self, lr: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        """LR (N, 3, h, w) in [0, 1] -> SR (N, 3, h*scale, w*scale), not clamped."""
        return self.sr(lr, scale)

    # ---- training ---------------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        lr, hr = batch["lr"], batch["hr"]
        scale = batch.get("scale")  # multi-scale training (VDSR): the scale drawn for this batch
        if self.hparams.color == "y":
            pred, target = self.sr.predict_y(lr, scale), rgb_to_y(hr)
        else:
            pred, target = self(lr, scale), hr
        loss = self.criterion(pred, target)
        self.log(f"train/{self.hparams.loss}", loss, prog_bar=True, batch_size=lr.shape[0])
        return loss

    # ---- validation -------------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        self.val_name = getattr(datamodule, "val_name", "val")

    def validation_step(self, batch: dict, batch_idx: int) -> dict:
        lr, hr = batch["lr"], batch["hr"]
        sr = self(lr).clamp(0, 1)
        psnr, ssim = score_image(sr[0], hr[0], self.hparams.scale, self.hparams.y_rounding)
        prefix = f"val/{self.val_name}"
        self.log(f"{prefix}/psnr_y", psnr, prog_bar=True, batch_size=1, sync_dist=True)
        self.log(f"{prefix}/ssim_y", ssim, batch_size=1, sync_dist=True)
        return {"sr": sr, "name": batch["name"][0], "psnr_y": psnr, "ssim_y": ssim}

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

