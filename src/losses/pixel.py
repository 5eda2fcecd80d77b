"""Pixel losses: L1, MSE (L2) and Charbonnier, and the total-variation regulariser, on float images in [0, 1]
(computed in fp32, autocast off)."""

from __future__ import annotations

import torch
from torch import nn

from src.losses.precision import fp32_loss

PIXEL_LOSSES = ("l1", "mse", "charbonnier")


class CharbonnierLoss(nn.Module):
    """mean(sqrt((x - y)^2 + eps^2)), a differentiable L1 (LapSRN). ``eps`` in image units (1e-3 = 0.26/255)."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    @fp32_loss
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((pred - target) ** 2 + self.eps**2).mean()


def build_pixel_loss(name: str) -> nn.Module:
    """``'l1'`` | ``'mse'`` | ``'charbonnier'`` -> a loss module taking (pred, target) of equal shape."""
    if name == "l1":
        return nn.L1Loss()
    if name == "mse":
        return nn.MSELoss()
    if name == "charbonnier":
        return CharbonnierLoss()
    raise ValueError(f"unknown pixel loss {name!r}: expected one of {', '.join(PIXEL_LOSSES)}")


class PixelLoss(nn.Module):
    """A weighted pixel loss for loss lists in configs: ``loss_weight · criterion(pred, target)``.

    Args:
        criterion: ``l1`` | ``mse`` | ``charbonnier``.
        loss_weight: multiplier of the term.
    """

    def __init__(self, criterion: str = "l1", loss_weight: float = 1.0) -> None:
        super().__init__()
        self.criterion = build_pixel_loss(criterion)
        self.loss_weight = loss_weight

    @fp32_loss
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * self.criterion(pred, target)


class TVLoss(nn.Module):
    """Anisotropic total variation: ``loss_weight · (mean |∂x| + mean |∂y|)`` of (N, C, H, W) images."""

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    @fp32_loss
    def forward(self, pred: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        dx = (pred[..., :, 1:] - pred[..., :, :-1]).abs().mean()
        dy = (pred[..., 1:, :] - pred[..., :-1, :]).abs().mean()
        return self.loss_weight * (dx + dy)
