"""Adversarial criteria: vanilla (BCE, SRGAN), LSGAN, hinge, WGAN(-GP) and ESRGAN's relativistic average GAN.

All take raw discriminator outputs (logits, any shape) and return a scalar already multiplied by
``loss_weight`` for the generator (``is_disc=False``); discriminator losses are unweighted, as in ESRGAN/BasicSR.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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
        return F.binary_cross_entropy_with_logits(x, torch.full_like(x, 1.0 if real else 0.0))

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self._bce(real_logits - fake_logits.mean(), True)
                      + self._bce(fake_logits - real_logits.mean(), False))

    def generator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real_logits = real_logits.detach()
        loss = 0.5 * (self._bce(real_logits - fake_logits.mean(), False)
                      + self._bce(fake_logits - real_logits.mean(), True))
        return loss * self.loss_weight


def gradient_penalty(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0
                     ) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): weight · E[(‖∇D(x̂)‖₂ − 1)²] on random interpolates x̂ of real/fake."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = discriminator(mixed)
    grads = torch.autograd.grad(out.sum(), mixed, create_graph=True)[0]
    return weight * ((grads.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
