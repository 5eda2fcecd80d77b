"""Lightning callbacks and plugins that are not part of a method: image panels logged during validation, epoch
timing, the step-based progress bar, and the run's checkpoints (``best.ckpt`` by validation PSNR, ``last.ckpt``
always the latest state, both written atomically)."""

from __future__ import annotations

import io
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint, ModelSummary, ProgressBar
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.model_summary import get_human_readable_count

from src.data.batch import SRBatch
from src.degradations import imresize
from src.evaluation.panels import comparison_panel, detailed_crop, nearest_upscale
from src.storage.atomic import write_bytes

log = logging.getLogger(__name__)


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
        batch: SRBatch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if trainer.sanity_checking or batch_idx >= self.num_images or not trainer.is_global_zero:
            return
        targets = [lg for lg in trainer.loggers if isinstance(lg, (WandbLogger, TensorBoardLogger))]
        if not targets or not isinstance(outputs, dict) or "sr" not in outputs:
            return
        hr = batch.hr[0].detach().float().cpu()
        sr = outputs["sr"][0].detach().float().cpu()
        lr = batch.lr[0].detach().float().cpu()
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

    def on_train_batch_end(self, trainer, pl_module, outputs, batch: SRBatch, batch_idx) -> None:
        self._batches += 1
        self._batch_size = len(batch)

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


class NetworkSummary(ModelSummary):
    """Replaces Lightning's model summary (whose FLOPs column reads 0 without an ``example_input_array``, which our
    DataModule's batch hook cannot take): parameters per top-level module and the network's FLOPs on a 64x64
    RGB LR image (``src.metrics.efficiency.count_flops``; 1 multiply-add = 2 FLOPs)."""

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        from src.metrics.efficiency import count_flops, count_parameters

        rows = [(name, type(module).__name__, count_parameters(module)) for name, module in pl_module.named_children()]
        width = max((len(n) for n, _, _ in rows), default=4)
        lines = [f"  {n:<{width}}  {t:<20} {get_human_readable_count(p):>8} params" for n, t, p in rows]
        trainable = count_parameters(pl_module, trainable_only=True)
        flops = ""
        sr = getattr(pl_module, "sr", None)
        if isinstance(sr, torch.nn.Module):
            was_training = sr.training
            sr.eval()
            x = torch.zeros(1, 3, 64, 64, device=pl_module.device)
            with torch.no_grad():
                flops = f", {count_flops(sr, x) / 1e9:.2f} GFLOPs per 64x64 LR image"
            sr.train(was_training)
        log.info("%s: %s trainable parameters%s\n%s", type(pl_module).__name__,
                 get_human_readable_count(trainable), flops, "\n".join(lines))


class StepProgressBar(ProgressBar):
    """The training progress as optimizer steps done / ``trainer.max_steps`` with elapsed time and the ETA of the
    whole run (Lightning's bars count epochs, which are meaningless for step budgets: ``Epoch 107/-2``).

    On a terminal: a live bar (rich) with the latest logged values and a validation bar below it. Piped to a file
    (SLURM logs): one plain line at every tenth of the run and at the end, never terminal control codes."""

    def __init__(self, lines: int = 10) -> None:
        super().__init__()
        self._enabled = True
        self.lines = lines
        self._progress = None
        self._train_task = None
        self._val_task = None
        self._start = 0.0
        self._start_step = 0
        self._next_line = 0

    # ---- ProgressBar API
    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def print(self, *args, **kwargs) -> None:
        if self._progress is not None:
            self._progress.console.print(*args, **kwargs)
        else:
            print(*args, **kwargs)

    # ---- helpers
    def _metrics_text(self, trainer: Trainer, pl_module: LightningModule) -> str:
        items = []
        for key, value in self.get_metrics(trainer, pl_module).items():
            if key == "v_num":
                continue
            if isinstance(value, torch.Tensor):
                value = value.item()
            items.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
        return "  ".join(items)

    def _eta(self, done: int, total: int) -> tuple[float, float | None]:
        elapsed = time.perf_counter() - self._start
        rate_steps = done - self._start_step
        eta = elapsed / rate_steps * (total - done) if rate_steps > 0 else None
        return elapsed, eta

    @staticmethod
    def _clock(seconds: float | None) -> str:
        if seconds is None:
            return "?"
        seconds = int(round(seconds))
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"

    # ---- hooks
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        import sys

        self._start, self._start_step = time.perf_counter(), trainer.global_step
        total = trainer.max_steps
        self._next_line = trainer.global_step + max(1, total // self.lines)
        if sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                TextColumn("{task.fields[unit]}"),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"),
            )
            self._progress.start()
            self._train_task = self._progress.add_task("training", total=total, completed=trainer.global_step,
                                                       metrics="", unit="steps")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        done, total = trainer.global_step, trainer.max_steps
        if self._progress is not None:
            self._progress.update(self._train_task, completed=done, metrics=self._metrics_text(trainer, pl_module))
        elif done >= self._next_line or done >= total:
            self._next_line = done + max(1, total // self.lines)
            elapsed, eta = self._eta(done, total)
            print(f"step {done}/{total} ({100 * done / total:.0f}%)  elapsed {self._clock(elapsed)}  "
                  f"eta {self._clock(eta)}  {self._metrics_text(trainer, pl_module)}".rstrip(), flush=True)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._enabled and self._progress is not None and trainer.is_global_zero:
            counts = [float(n) for n in trainer.num_val_batches]
            total = int(sum(counts)) if counts and all(n < float("inf") for n in counts) else None
            self._val_task = self._progress.add_task("validating", total=total, metrics="", unit="images")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self._val_task is not None and self._progress is not None:
            self._progress.advance(self._val_task)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._val_task is not None and self._progress is not None:
            self._progress.remove_task(self._val_task)
        self._val_task = None

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._progress is not None:
            self._progress.update(self._train_task, completed=trainer.global_step,
                                  metrics=self._metrics_text(trainer, pl_module))
            self._progress.stop()
            self._progress = None

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class ObjectiveTracker(Callback):
    """Keeps every value of one validation metric (``key``, e.g. ``val/sample/psnr_y``) seen after a validation
    (sanity checks excluded): ``best`` is the highest (``maximize``) or lowest (``minimize``) finite value, ``last``
    the latest value (``nan`` when the run diverged)."""

    def __init__(self, key: str, direction: str = "maximize") -> None:
        if direction not in ("maximize", "minimize"):
            raise ValueError(f"direction={direction!r}: expected 'maximize' or 'minimize'")
        self.key = key
        self.direction = direction
        self.values: list[float] = []

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or self.key not in trainer.callback_metrics:
            return
        self.values.append(float(trainer.callback_metrics[self.key]))

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None

    @property
    def best(self) -> float | None:
        finite = [v for v in self.values if math.isfinite(v)]
        if not finite:
            return None
        return max(finite) if self.direction == "maximize" else min(finite)


# ---- checkpoints ---------------------------------------------------------------------------------------------
class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``torch.save`` checkpoint writer, made atomic: the checkpoint goes to a temporary file in the
    same folder, is fsynced and renamed (:func:`src.storage.atomic.atomic_write`). Lightning's own writer stages the
    file through fsspec's temporary file elsewhere, so on a full disk it could leave a truncated ``last.ckpt``
    under the final name; here a failed write raises and leaves the previous file as it was."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        buffer = io.BytesIO()  # serialised first: torch.save reports a failed write as an opaque RuntimeError
        torch.save(checkpoint, buffer)
        write_bytes(Path(path), buffer.getbuffer())


class BestCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that never ranks a non-finite score: a NaN / inf validation PSNR (a diverged network)
    cannot become ``best.ckpt``, and is logged as a warning instead."""

    def check_monitor_top_k(self, trainer: Trainer, current: torch.Tensor | None = None) -> bool:
        if current is not None and not math.isfinite(float(current)):
            if trainer.is_global_zero:
                log.warning("step %d: %s = %s is not finite: not a candidate for best.ckpt (the network diverged?)",
                            trainer.global_step, self.monitor, float(current))
            return False
        return super().check_monitor_top_k(trainer, current)


class LastCheckpoint(Checkpoint):
    """Keeps ``<dirpath>/last.ckpt`` at the latest training state (weights, optimizers, schedules, loops):

    * after every validation (also when the score did not improve),
    * every ``every_n_train_steps`` optimizer steps (``None``: only the other occasions),
    * at the end of training,
    * when the run is stopped: SIGTERM (SLURM preemption, ``kill``; Lightning's signal connector turns it into
      ``SIGTERMException`` once the current step is done) or SIGINT / Ctrl+C (``KeyboardInterrupt``).

    Any other exception (a crash, a divergence stop) leaves the previous ``last.ckpt`` untouched: it holds the
    last state that was saved while training was healthy. ``interrupted_by`` names the signal after a stop.
    """

    FILENAME = "last.ckpt"

    def __init__(self, dirpath: str | Path, every_n_train_steps: int | None = None) -> None:
        if every_n_train_steps is not None and every_n_train_steps < 1:
            raise ValueError(f"every_n_train_steps must be >= 1 or None, got {every_n_train_steps}")
        self.dirpath = Path(dirpath)
        self.every_n_train_steps = every_n_train_steps
        self.saved_step: int | None = None
        self.interrupted_by: str | None = None

    @property
    def path(self) -> Path:
        return self.dirpath / self.FILENAME

    def _save(self, trainer: Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)
        self.saved_step = trainer.global_step

    @staticmethod
    def _fitting(trainer: Trainer) -> bool:
        return trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking and not trainer.fast_dev_run

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx) -> None:
        step, every = trainer.global_step, self.every_n_train_steps
        if every and step > 0 and step % every == 0 and step != self.saved_step and self._fitting(trainer):
            self._save(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._fitting(trainer) and trainer.global_step > 0:
            self._save(trainer)  # also at a step saved before: best.ckpt's bookkeeping may have changed

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._fitting(trainer) and trainer.global_step != self.saved_step:
            self._save(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):
            self.interrupted_by = "SIGTERM"
        elif isinstance(exception, KeyboardInterrupt):
            self.interrupted_by = "SIGINT"
        else:
            return
        if trainer.state.fn == TrainerFn.FITTING and not trainer.fast_dev_run and trainer.global_step > 0:
            self._save(trainer)
