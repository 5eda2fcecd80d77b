"""MS-SSIM and Mix losses as Zhao et al. define them ("Loss Functions for Image Restoration with Neural
Networks", IEEE TCI 2017), used by ESRGAN-Pro.

Zhao et al. compute MS-SSIM per pixel at full resolution, replacing the dyadic pyramid by Gaussian windows of
growing width σ_j ∈ {0.5, 1, 2, 4, 8}: MS-SSIM(p) = l_M(p) · Π_j cs_j(p) (all exponents 1), with the luminance
term of the largest window. Mix = α·(1 − MS-SSIM) + (1 − α)·G_σM ⊗ |x − y| with α = 0.84, the L1 error
weighted by the largest Gaussian. Images in [0, 1] (``data_range`` 1): C1 = (0.01)², C2 = (0.03)².
Everything runs in float32 with autocast off (see :mod:`src.losses.precision`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from src.losses.precision import fp32_loss, no_autocast

ZHAO_SIGMAS = (0.5, 1.0, 2.0, 4.0, 8.0)


def _gaussian_kernel(sigma: float, channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Normalised 1-D Gaussian taps (radius ceil(3σ)) as a depthwise (channels, 1, 1, k) kernel."""
    radius = math.ceil(3 * sigma)
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).view(1, 1, 1, -1).expand(channels, 1, 1, -1).contiguous()


def _blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding: two 1-D depthwise passes (the 2-D Gaussian is their
    product, so this equals the dense k×k filter at 2k instead of k² multiply-adds per pixel)."""
    pad = kernel.shape[-1] // 2
    c = x.shape[1]
    x = F.conv2d(_reflect(x, pad, -1), kernel, groups=c)
    return F.conv2d(_reflect(x, pad, -2), kernel.transpose(-1, -2), groups=c)


def _reflect(x: torch.Tensor, pad: int, dim: int) -> torch.Tensor:
    """Reflect padding of one axis; under deterministic algorithms by ``index_select`` (``F.pad``'s reflect
    backward raises there on CUDA), else ``F.pad``."""
    if not torch.are_deterministic_algorithms_enabled():
        return F.pad(x, (pad, pad, 0, 0) if dim == -1 else (0, 0, pad, pad), mode="reflect")
    n = x.shape[dim]
    idx = torch.arange(-pad, n + pad, device=x.device).abs()
    idx = torch.where(idx >= n, 2 * (n - 1) - idx, idx)
    return x.index_select(dim, idx)


def ms_ssim_map(
    x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float] = ZHAO_SIGMAS, data_range: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel MS-SSIM of Zhao et al.: (N, C, H, W) pairs -> (map (N, C, H, W), largest Gaussian kernel).

    H and W must exceed 3·max(σ) (24 px for the default σ) for the reflect padding. Computed in float32 with
    autocast off (Gaussian windows in float32) whatever the inputs' dtype: in bf16 the variances cancel away.
    """
    with no_autocast(x, y):
        return _ms_ssim_map(x.float(), y.float(), sigmas, data_range)


def _ms_ssim_map(
    x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float], data_range: float
) -> tuple[torch.Tensor, torch.Tensor]:
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"MS-SSIM expects two equal (N, C, H, W) tensors, got {tuple(x.shape)}, {tuple(y.shape)}")
    need = math.ceil(3 * max(sigmas)) + 1
    if min(x.shape[-2:]) < need:
        raise ValueError(f"MS-SSIM with σ up to {max(sigmas)} needs patches of at least {need}x{need} px, "
                         f"got {tuple(x.shape[-2:])}")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    # (co)variances are shift-invariant: compute them on mean-centred images, which avoids the fp32
    # cancellation of E[x²] − E[x]² (a 1e-3 bias of MS-SSIM on flat regions otherwise)
    xc = x - x.mean(dim=(-2, -1), keepdim=True)
    yc = y - y.mean(dim=(-2, -1), keepdim=True)
    cs_product = torch.ones_like(x)
    kernel = None
    for sigma in sigmas:
        kernel = _gaussian_kernel(sigma, x.shape[1], x.device, torch.float32)
        mu_xc, mu_yc = _blur(xc, kernel), _blur(yc, kernel)
        var_x = _blur(xc * xc, kernel) - mu_xc**2
        var_y = _blur(yc * yc, kernel) - mu_yc**2
        cov = _blur(xc * yc, kernel) - mu_xc * mu_yc
        cs_product = cs_product * (2 * cov + c2) / (var_x + var_y + c2)
    mu_x, mu_y = _blur(x, kernel), _blur(y, kernel)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return luminance * cs_product, kernel


class MSSSIMLoss(nn.Module):
    """``loss_weight · (1 − mean MS-SSIM)`` (Zhao et al.); inputs (N, C, H, W) in [0, 1]."""

    def __init__(self, loss_weight: float = 1.0, sigmas: Sequence[float] = ZHAO_SIGMAS) -> None:
        super().__init__()
        self.loss_weight, self.sigmas = loss_weight, tuple(sigmas)

    @fp32_loss
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ms_ssim, _ = ms_ssim_map(pred, target, self.sigmas)
        return self.loss_weight * (1 - ms_ssim.mean())


class MixLoss(nn.Module):
    """Zhao et al.'s Mix loss (ESRGAN-Pro eq. 5): α·(1 − MS-SSIM) + (1 − α)·G_σM ⊗ |pred − target|, α = 0.84.

    Call: ``(pred, target)`` float (N, C, H, W) in [0, 1] -> scalar (times ``loss_weight``).
    """

    def __init__(self, alpha: float = 0.84, loss_weight: float = 1.0, sigmas: Sequence[float] = ZHAO_SIGMAS) -> None:
        super().__init__()
        if not 0 <= alpha <= 1:
            raise ValueError(f"Mix loss alpha must be in [0, 1], got {alpha}")
        self.alpha, self.loss_weight, self.sigmas = alpha, loss_weight, tuple(sigmas)

    @fp32_loss
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ms_ssim, kernel = ms_ssim_map(pred, target, self.sigmas)
        weighted_l1 = _blur((pred - target).abs(), kernel)
        loss = self.alpha * (1 - ms_ssim.mean()) + (1 - self.alpha) * weighted_l1.mean()
        return self.loss_weight * loss

