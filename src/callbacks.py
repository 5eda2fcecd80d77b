"""Lightning callbacks that are not part of a method: image panels logged during validation."""

from __future__ import annotations

import time

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

from src.degradations import imresize
from src.evaluation.panels import comparison_panel, detailed_crop
from src.evaluation.report import nearest_upscale


class ValidationPanels(Callback):
    """Logs LR (nearest) | bicubic | SR | HR crops (the same square, the most detailed one of the HR) of the
    first ``num_images`` validation images to W&B and TensorBoard (key ``val/<dataset>/panel_<i>``). Needs
    ``validation_step`` to return ``{"sr": …, "name": …}``."""

    def __init__(self, num_images: int = 2, crop: int = 96) -> None:
        self.num_images = num_images
        self.crop = crop

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: dict | None,
        batch: dict,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if trainer.sanity_checking or batch_idx >= self.num_images or not trainer.is_global_zero:
            return
        targets = [lg for lg in trainer.loggers if isinstance(lg, (WandbLogger, TensorBoardLogger))]
        if not targets or not isinstance(outputs, dict) or "sr" not in outputs:
            return
        hr = batch["hr"][0].detach().float().cpu()
        sr = outputs["sr"][0].detach().float().cpu()
        lr = batch["lr"][0].detach().float().cpu()
        with torch.no_grad():
            bicubic = imresize(lr.unsqueeze(0), float(pl_module.hparams.scale)).clamp(0, 1)[0]
        lr_nearest = nearest_upscale(lr, tuple(hr.shape[-2:]))
        panel = comparison_panel([lr_nearest, bicubic, sr, hr], ["LR (nearest)", "bicubic", "SR", "HR"],
                                 crop=detailed_crop(hr, self.crop))
        key = f"val/{getattr(pl_module, 'val_name', 'val')}/panel_{batch_idx}"
        image = np.asarray(panel)
        for logger in targets:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=key, images=[image], caption=[outputs.get("name", "")], step=trainer.global_step)
            else:
                logger.experiment.add_image(key, image, trainer.global_step, dataformats="HWC")


class EpochTimer(Callback):
    """Logs ``train/epoch_time_s`` (wall time of each training epoch, validation excluded) and
    ``train/images_per_s`` (training patches per second over that epoch, all processes)."""

    def __init__(self) -> None:
        self._start = 0.0
        self._paused = 0.0
        self._val_start = 0.0
        self._batches = 0

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start, self._paused, self._batches = time.perf_counter(), 0.0, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._batches += 1
        self._batch_size = batch["hr"].shape[0]

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._val_start = time.perf_counter()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._paused += time.perf_counter() - self._val_start

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._batches:
            return
        seconds = time.perf_counter() - self._start - self._paused
        images = self._batches * self._batch_size * trainer.world_size
        pl_module.log("train/epoch_time_s", seconds, sync_dist=True)
        pl_module.log("train/images_per_s", images / max(seconds, 1e-9), sync_dist=True)
