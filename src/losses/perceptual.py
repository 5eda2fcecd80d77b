"""Perceptual (feature) loss and Gram-matrix style loss on VGG features (Johnson et al. 2016; Gatys et al.)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from src.archs.vgg import VGGFeatureExtractor
from src.losses.precision import fp32_loss

CRITERIA = ("l1", "l2", "fro")


def feature_distance(a: torch.Tensor, b: torch.Tensor, criterion: str) -> torch.Tensor:
    """Distance between two feature tensors of one shape (any layout, e.g. (N, C, H, W) or Gram (N, C, C)).

    ``l1``: mean absolute difference; ``l2``: mean squared difference; ``fro``: the Frobenius norm of the
    whole difference tensor, batch included and not averaged (BasicSR's ``torch.norm(diff, p='fro')``).
    Returns a scalar tensor.
    """
    if criterion == "l1":
        return (a - b).abs().mean()
    if criterion == "l2":
        return ((a - b) ** 2).mean()
    if criterion == "fro":
        return torch.linalg.vector_norm(a - b)
    raise ValueError(f"perceptual criterion={criterion!r}: expected one of {CRITERIA}")


def gram_matrix(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C) Gram matrix normalised by C*H*W."""
    n, c, h, w = x.shape
    f = x.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


class PerceptualLoss(nn.Module):
    """Weighted distance between VGG features of SR and HR, plus an optional Gram (style) term.

    Args:
        layer_weights: ``{layer name: weight}``; ``convX_Y`` is before the ReLU (ESRGAN), ``reluX_Y`` after
            (SRGAN).
        vgg_type: ``vgg19`` | ``vgg16``.
        criterion: ``l1`` | ``l2`` (mean squared error) | ``fro`` (Frobenius norm of the whole difference,
            as BasicSR: see :func:`feature_distance`).
        perceptual_weight: weight of the feature term (0 disables it).
        style_weight: weight of the Gram-matrix term (0 disables it).
        feature_scale: features are multiplied by it before the distance (SRGAN's VGG54 uses 1/12.75).
        use_input_norm / range_norm / weights / weights_path: see :class:`VGGFeatureExtractor`.

    Call: ``(pred, target)`` float (N, 3, H, W) in [0, 1] -> ``(perceptual, style)`` scalars (``None`` for a
    disabled term); gradients flow into ``pred`` only. VGG and distances run in float32 with autocast off.
    """

    needs_rgb = True  # VGG features need RGB input

    def __init__(
        self,
        layer_weights: Mapping[str, float],
        vgg_type: str = "vgg19",
        criterion: str = "l1",
        perceptual_weight: float = 1.0,
        style_weight: float = 0.0,
        feature_scale: float = 1.0,
        use_input_norm: bool = True,
        range_norm: bool = False,
        weights: str = "imagenet",
        weights_path: str | None = None,
    ) -> None:
        super().__init__()
        if criterion not in CRITERIA:
            raise ValueError(f"perceptual criterion={criterion!r}: expected one of {CRITERIA}")
        self.layer_weights = {str(k): float(v) for k, v in layer_weights.items()}
        self.vgg = VGGFeatureExtractor(
            self.layer_weights, vgg_type, use_input_norm, range_norm, weights=weights, weights_path=weights_path
        )
        self.criterion = criterion
        self.perceptual_weight, self.style_weight = perceptual_weight, style_weight
        self.feature_scale = feature_scale

    @fp32_loss
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        pred_f = self.vgg(pred)
        with torch.no_grad():
            target_f = self.vgg(target.detach())
        percep = style = None
        if self.perceptual_weight > 0:
            percep = sum(
                w * feature_distance(pred_f[k] * self.feature_scale, target_f[k] * self.feature_scale, self.criterion)
                for k, w in self.layer_weights.items()
            ) * self.perceptual_weight
        if self.style_weight > 0:
            style = sum(
                w * feature_distance(gram_matrix(pred_f[k]), gram_matrix(target_f[k]), self.criterion)
                for k, w in self.layer_weights.items()
            ) * self.style_weight
        return percep, style
