"""Adversarial criteria: vanilla (BCE, SRGAN), LSGAN, hinge, WGAN(-GP) and ESRGAN's relativistic average GAN.

All take raw discriminator outputs (logits, any shape) and return a scalar already multiplied by
``loss_weight`` for the generator (``is_disc=False``); discriminator losses are unweighted, as in ESRGAN/BasicSR.
Criteria run in float32 with autocast off (the discriminator itself may run in half precision); the WGAN-GP
penalty runs the discriminator in float32 too (its double backward is the loss).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from src.losses.precision import fp32_loss, no_autocast

GAN_TYPES = ("vanilla", "lsgan", "hinge", "wgan")


class GANLoss(nn.Module):
    """Standard (non-relativistic) adversarial loss.

    ``forward(logits, target_is_real, is_disc)``:
      vanilla: BCE-with-logits against 1/0; lsgan: MSE against 1/0; hinge: D: relu(1 ∓ x), G: −x;
      wgan: D: ∓x, G: −x (add :func:`gradient_penalty` for WGAN-GP).
    """

    def __init__(self, gan_type: str = "vanilla", loss_weight: float = 1.0, real_label: float = 1.0,
                 fake_label: float = 0.0) -> None:
        super().__init__()
        if gan_type not in GAN_TYPES:
            raise ValueError(f"gan_type={gan_type!r}: expected one of {GAN_TYPES} (or use RelativisticGANLoss)")
        self.gan_type, self.loss_weight = gan_type, loss_weight
        self.real_label, self.fake_label = real_label, fake_label

    @fp32_loss
    def forward(self, logits: torch.Tensor, target_is_real: bool, is_disc: bool = False) -> torch.Tensor:
        if self.gan_type in ("vanilla", "lsgan"):
            target = torch.full_like(logits, self.real_label if target_is_real else self.fake_label)
            loss = (F.binary_cross_entropy_with_logits(logits, target) if self.gan_type == "vanilla"
                    else F.mse_loss(logits, target))
        elif self.gan_type == "hinge":
            if is_disc:
                loss = F.relu(1 - logits).mean() if target_is_real else F.relu(1 + logits).mean()
            else:
                loss = -logits.mean()
        else:  # wgan
            loss = -logits.mean() if target_is_real else logits.mean()
        return loss if is_disc else loss * self.loss_weight


class RelativisticGANLoss(nn.Module):
    """Relativistic average GAN (Jolicoeur-Martineau 2018) as ESRGAN uses it, with BCE on logits:

    D: ½·[BCE(C(x_r) − E[C(x_f)], 1) + BCE(C(x_f) − E[C(x_r)], 0)]
    G: ½·[BCE(C(x_r) − E[C(x_f)], 0) + BCE(C(x_f) − E[C(x_r)], 1)] · loss_weight
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    @staticmethod
    def _bce(x: torch.Tensor, real: bool) -> torch.Tensor:
        x = x.float()
        with no_autocast(x):
            return F.binary_cross_entropy_with_logits(x, torch.full_like(x, 1.0 if real else 0.0))

    @fp32_loss
    def discriminator_terms(self, real_logits: torch.Tensor, fake_logits: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """BasicSR's two discriminator terms, each with the other side's logits detached: (real term, fake term),
        each already halved; their sum is the discriminator loss."""
        return (0.5 * self._bce(real_logits - fake_logits.detach().mean(), True),
                0.5 * self._bce(fake_logits - real_logits.detach().mean(), False))

    @fp32_loss
    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self._bce(real_logits - fake_logits.mean(), True)
                      + self._bce(fake_logits - real_logits.mean(), False))

    @fp32_loss
    def generator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real_logits = real_logits.detach()
        loss = 0.5 * (self._bce(real_logits - fake_logits.mean(), False)
                      + self._bce(fake_logits - real_logits.mean(), True))
        return loss * self.loss_weight


def gradient_penalty(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
                     scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): weight · E[(‖∇D(x̂)‖₂ − 1)²] on random interpolates x̂ of real/fake.

    The discriminator runs in float32 with autocast off. ``scaler`` (the fp16 ``GradScaler`` of the trainer's
    precision plugin, if any): ``D(x̂)`` is scaled before ``autograd.grad`` and the input gradient unscaled
    after, as PyTorch's AMP recipe for gradient penalties prescribes (no underflow of small gradients).
    """
    real, fake = real.detach().float(), fake.detach().float()
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    with no_autocast(mixed):
        out = discriminator(mixed).float().sum()
        if scaler is not None and scaler.is_enabled():
            scaled = scaler.scale(out)
            (grads,) = torch.autograd.grad(scaled, mixed, create_graph=True)
            grads = grads / (scaled.detach() / out.detach())  # unscale by the same factor, without a host sync
        else:
            (grads,) = torch.autograd.grad(out, mixed, create_graph=True)
        return weight * ((grads.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
