"""Lightning callbacks that are not part of a method: image panels logged during validation."""

from __future__ import annotations

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

from src.degradations import imresize
from src.evaluation.panels import comparison_panel, detailed_crop


class ValidationPanels(Callback):
    """Logs bicubic | SR | HR crops of the first ``num_images`` validation images to W&B and TensorBoard
    (key ``val/<dataset>/panel_<i>``). Needs ``validation_step`` to return ``{"sr": …, "name": …}``."""

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
        with torch.no_grad():
            bicubic = imresize(batch["lr"][:1].float(), float(pl_module.hparams.scale)).clamp(0, 1)[0].cpu()
        panel = comparison_panel([bicubic, sr, hr], ["bicubic", "SR", "HR"], crop=detailed_crop(hr, self.crop))
        key = f"val/{getattr(pl_module, 'val_name', 'val')}/panel_{batch_idx}"
        image = np.asarray(panel)
        for logger in targets:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=key, images=[image], caption=[outputs.get("name", "")], step=trainer.global_step)
            else:
                logger.experiment.add_image(key, image, trainer.global_step, dataformats="HWC")
