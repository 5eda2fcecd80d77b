"""Adversarial SR training (SRGAN, ESRGAN, Real-ESRGAN, ESRGAN-Pro) with manual optimization.

Each training step follows ESRGAN's order:
1. generator step, discriminator frozen (``requires_grad=False``): content terms (pixel / perceptual / Mix, from
   ``loss``) + the adversarial term, the latter only every ``net_d_iters`` steps after ``net_d_init_iters``;
2. discriminator step on the real HR and the **detached** SR output.

For the relativistic average GAN (``gan.type=ragan``) both steps use ESRGAN's relativistic terms, with the
other side's logits detached in each discriminator term as BasicSR computes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn

from src.data.batch import SRBatch
from src.losses import GANLoss, RelativisticGANLoss, gradient_penalty
from src.methods.guard import GanCollapseMonitor, restore_running_stats, snapshot_running_stats
from src.methods.supervised import SupervisedSR, _plain

GAN_TYPES = ("vanilla", "lsgan", "hinge", "wgan", "wgan_gp", "ragan")


class AdversarialSR(SupervisedSR):
    """A generator (``arch``) trained against a discriminator.

    Args (in addition to :class:`SupervisedSR`'s; ``loss`` holds the generator's content terms):
        discriminator: Hydra config of the discriminator network.
        gan: ``{type, loss_weight[, gp_weight]}``: ``type`` in vanilla | lsgan | hinge | wgan | wgan_gp | ragan;
            ``loss_weight`` weights the generator's adversarial term; ``gp_weight`` the WGAN-GP penalty.
        optimizer_d / lr_scheduler_d: the discriminator's optimizer and schedule (``_partial_`` configs).
        net_d_iters: the generator's adversarial term and the discriminator step run every N steps.
        net_d_init_iters: steps of content-only training before the adversarial game starts.
        gan_target_usm: show the discriminator the USM-sharpened HR (``batch.hr_usm``) as real (Real-ESRGAN:
            False; its content terms use it: ``content_target_usm``, a :class:`SupervisedSR` argument).
        pretrained: generator initialisation (the PSNR-stage checkpoint, any format ``model.weights`` takes).
        grad_clip_d: clip the discriminator's gradient norm (``trainer.gradient_clip_val`` cannot be used with
            manual optimization; ``grad_clip_g`` does the same for the generator). Applied to unscaled gradients
            under ``16-mixed`` (in ``on_before_optimizer_step``).
        postprocess: applied at evaluation by ``src.evaluate`` / ``src.upscale`` (``none`` | ``back_projection``).

    Logged: ``train/g_<content term>``, ``train/g_gan``, ``train/g_total``, ``train/d_real``, ``train/d_fake``
    (mean discriminator outputs), ``train/d_loss`` (and ``train/d_gp`` for WGAN-GP). Both learning-rate schedules
    step once per training step; ``trainer.max_steps`` counts training steps (generator updates).

    Divergence guard (``guard``, see :class:`SupervisedSR`): a non-finite generator loss skips the whole iteration
    (no G or D update, no EMA or schedule step; the iteration does not count in ``global_step``, as the schedules
    do not), a non-finite discriminator loss skips the D update; both count towards ``max_nonfinite_steps`` in a
    row. GAN collapse signals (D loss -> 0, G's
    adversarial loss exploding) are warned about (:class:`~src.methods.guard.GanCollapseMonitor`).
    """

    needs_find_unused = True  # D is frozen in the G step: DDP must tolerate parameters without gradients

    def __init__(
        self,
        discriminator: Mapping,
        gan: Mapping,
        optimizer_d: Mapping | None = None,
        lr_scheduler_d: Mapping | None = None,
        net_d_iters: int = 1,
        net_d_init_iters: int = 0,
        gan_target_usm: bool = False,
        pretrained: str | None = None,
        grad_clip_g: float | None = None,
        grad_clip_d: float | None = None,
        postprocess: str = "none",
        **kwargs: Any,
    ) -> None:
        if pretrained and kwargs.get("weights"):
            raise ValueError("give model.pretrained or model.weights, not both")
        weights = pretrained or kwargs.pop("weights", None)
        super().__init__(weights=weights, **kwargs)
        gan = dict(_plain(gan))
        gan_type = gan.get("type")
        if gan_type not in GAN_TYPES:
            raise ValueError(f"model.gan.type={gan_type!r}: expected one of {GAN_TYPES}")
        unknown = set(gan) - {"type", "loss_weight", "gp_weight"}
        if unknown:
            raise ValueError(f"model.gan has unknown keys {sorted(unknown)}; valid: type, loss_weight, gp_weight")
        if net_d_iters < 1 or net_d_init_iters < 0:
            raise ValueError(f"model.net_d_iters must be >= 1 and net_d_init_iters >= 0, got {net_d_iters}, "
                             f"{net_d_init_iters}")
        if postprocess not in ("none", "back_projection"):
            raise ValueError(f"model.postprocess={postprocess!r}: expected 'none' or 'back_projection'")
        if self.hparams.color != "rgb":
            raise ValueError("adversarial methods train on RGB (model.color=rgb)")
        self.save_hyperparameters(
            {
                "discriminator": _plain(discriminator),
                "gan": gan,
                "optimizer_d": _plain(optimizer_d),
                "lr_scheduler_d": _plain(lr_scheduler_d),
                "net_d_iters": net_d_iters,
                "net_d_init_iters": net_d_init_iters,
                "gan_target_usm": gan_target_usm,
                "grad_clip_g": grad_clip_g,
                "grad_clip_d": grad_clip_d,
                "postprocess": postprocess,
            },
            logger=False,
        )
        self.automatic_optimization = False
        self.net_d: nn.Module = instantiate(self.hparams.discriminator)
        weight = float(gan.get("loss_weight", 1.0))
        if gan_type == "ragan":
            self.gan_loss: nn.Module = RelativisticGANLoss(loss_weight=weight)
        else:
            self.gan_loss = GANLoss("wgan" if gan_type == "wgan_gp" else gan_type, loss_weight=weight)
        self.gp_weight = float(gan.get("gp_weight", 10.0)) if gan_type == "wgan_gp" else 0.0
        g = self.guard_settings
        self.collapse_monitor = GanCollapseMonitor(gan_type, g["window"], g["d_loss_floor"], g["loss_growth"])

    # ---- training ---------------------------------------------------------------------------------------
    def _adversarial_active(self, step: int) -> bool:
        return step >= self.hparams.net_d_init_iters and step % self.hparams.net_d_iters == 0

    def training_step(self, batch: SRBatch, batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        lr, hr = batch.lr, batch.hr
        hr_usm = batch.hr_usm if batch.hr_usm is not None else hr
        content_target = hr_usm if self.hparams.content_target_usm else hr
        gan_target = hr_usm if self.hparams.gan_target_usm else hr
        step, n = self.global_step, lr.shape[0]
        ragan = self.hparams.gan["type"] == "ragan"
        adversarial = self._adversarial_active(step)

        # (1) generator step, discriminator frozen
        stats = snapshot_running_stats(self.sr, self.net_d)  # put back if this iteration is skipped
        self.net_d.requires_grad_(False)
        sr = self.sr(lr)
        g_total = self.content_loss(sr, content_target, prefix="g_", batch_size=n)
        if adversarial:
            fake_g = self.net_d(sr)
            if ragan:
                g_gan = self.gan_loss.generator(self.net_d(gan_target).detach(), fake_g)
            else:
                g_gan = self.gan_loss(fake_g, True, is_disc=False)
            self.log_term("g_gan", g_gan, n, prog_bar=True)
            g_total = g_total + g_gan
        self.log("train/g_total", g_total, batch_size=n)
        if not self.nonfinite_guard.check(self, {"g_total": g_total}, reset=False):
            self.log("train/skipped_steps", float(self.nonfinite_guard.skipped), batch_size=n)
            restore_running_stats(stats)
            return None  # no update of G, D, EMA or schedules; the step does not count
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_total)
        opt_g.step()  # clipping (grad_clip_g) happens in on_before_optimizer_step, on unscaled gradients
        self.update_ema()

        # (2) discriminator step on real and detached fake
        if adversarial:
            self.net_d.requires_grad_(True)
            d_stats = snapshot_running_stats(self.net_d)
            fake = sr.detach()
            real_d = self.net_d(gan_target)
            fake_d = self.net_d(fake)
            if ragan:
                d_real, d_fake = self.gan_loss.discriminator_terms(real_d, fake_d)
                d_loss = d_real + d_fake
            else:
                d_loss = self.gan_loss(real_d, True, is_disc=True) + self.gan_loss(fake_d, False, is_disc=True)
                if self.gp_weight:
                    scaler = getattr(self.trainer.precision_plugin, "scaler", None)  # 16-mixed: fp16 GradScaler
                    gp = gradient_penalty(self.net_d, gan_target, fake, self.gp_weight, scaler=scaler)
                    self.log("train/d_gp", gp, batch_size=n)
                    d_loss = d_loss + gp
            self.log("train/d_loss", d_loss, batch_size=n)
            self.log("train/d_real", real_d.detach().mean(), batch_size=n)
            self.log("train/d_fake", fake_d.detach().mean(), batch_size=n)
            if self.nonfinite_guard.check(self, {"d_loss": d_loss}, reset=False):
                self.nonfinite_guard.reset()
                opt_d.zero_grad(set_to_none=True)
                self.manual_backward(d_loss)
                self._discriminator_step(opt_d.optimizer)
                self.collapse_monitor.update(step, d_loss, g_gan, rank_zero=self.global_rank == 0)
            else:
                self.log("train/skipped_steps", float(self.nonfinite_guard.skipped), batch_size=n)
                restore_running_stats(d_stats)
        else:
            self.nonfinite_guard.reset()

        for scheduler in self._schedulers():
            scheduler.step()

    def _discriminator_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Step the discriminator without counting it as a training step.

        With manual optimization every ``LightningOptimizer.step()`` adds one to ``global_step``; only generator
        updates may count (``trainer.max_steps``, checkpoints and schedules count training iterations). The raw
        optimizer goes through the strategy's public ``optimizer_step``, which is what ``LightningOptimizer.step``
        calls between its counting hooks: the precision plugin unscales (``16-mixed``), runs
        :meth:`on_before_optimizer_step` (``grad_clip_d``) and steps through the GradScaler as before."""
        self.trainer.strategy.optimizer_step(optimizer, closure=_no_op)

    def on_before_optimizer_step(self, optimizer) -> None:
        """Clip ``grad_clip_g`` / ``grad_clip_d`` here: Lightning's precision plugin calls this hook inside
        ``optimizer.step()`` after unscaling the gradients (16-mixed), so the limits apply to true gradients."""
        opt_g, opt_d = self.optimizers(use_pl_optimizer=False)
        limit = self.hparams.grad_clip_g if optimizer is opt_g else (
            self.hparams.grad_clip_d if optimizer is opt_d else None)
        if limit:
            self.clip_gradients(optimizer, gradient_clip_val=limit, gradient_clip_algorithm="norm")

    def _scheduler_configs(self, checkpoint=None) -> list:
        hparams = self.hparams if checkpoint is None else (checkpoint.get("hyper_parameters") or {})
        keys = (("model.lr_scheduler", "lr_scheduler"), ("model.lr_scheduler_d", "lr_scheduler_d"))
        return [(key, hparams[name]) for key, name in keys if hparams.get(name)]

    def _schedulers(self) -> list:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return []
        return schedulers if isinstance(schedulers, list) else [schedulers]

    # ---- optimisation -----------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        if not self.hparams.optimizer or not self.hparams.optimizer_d:
            raise ValueError("adversarial methods need model.optimizer (generator) and model.optimizer_d")
        opt_g = instantiate(self.hparams.optimizer)(self._param_groups())
        opt_d = instantiate(self.hparams.optimizer_d)(self.net_d.parameters())
        schedulers = []
        for cfg, opt in ((self.hparams.lr_scheduler, opt_g), (self.hparams.lr_scheduler_d, opt_d)):
            if cfg:
                schedulers.append({"scheduler": instantiate(cfg)(opt), "interval": "step"})
        return [opt_g, opt_d], schedulers


def _no_op() -> None:
    return None
