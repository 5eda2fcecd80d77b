"""Zhao et al.'s Mix loss, numerically the same as ``src.losses.MixLoss`` but with *separable* Gaussian blurs.

Why this file exists: ``src/losses/ssim_loss.py`` blurs with the full 2-D (6σ+1)² Gaussian as one depthwise
convolution; for σ = 8 that is a 49×49 kernel (2401 taps per pixel, 25 blurs per loss call), which on this CPU
made a Mix-loss step ~10× slower than an L1 step (~3 s vs ~0.3 s) and the 1000-step budget of the ablation
unreachable. A Gaussian is separable, so two 1-D passes (2·49 taps) give the same result up to float rounding
(checked by ``PYTHONPATH=. python experiments/seed004_loss_ablation/sep_mix.py``). Same reflect padding, same
constants, same centring, same formula. (Since this study, ``src.losses.MixLoss`` itself blurs separably.)
Used through ``model.loss.mix._target_=experiments.seed004_loss_ablation.sep_mix.MixLoss``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

ZHAO_SIGMAS = (0.5, 1.0, 2.0, 4.0, 8.0)


def _kernel_1d(sigma: float, channels: int, device, dtype) -> torch.Tensor:
    radius = math.ceil(3 * sigma)
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g.expand(channels, 1, -1).contiguous()  # (C, 1, K)


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    pad = g.shape[-1] // 2
    x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    c = x.shape[1]
    x = F.conv2d(x, g[:, :, None, :], groups=c)  # along W
    return F.conv2d(x, g[:, :, :, None], groups=c)  # along H


def ms_ssim_map(x, y, sigmas: Sequence[float] = ZHAO_SIGMAS, data_range: float = 1.0):
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"MS-SSIM expects two equal (N, C, H, W) tensors, got {tuple(x.shape)}, {tuple(y.shape)}")
    need = math.ceil(3 * max(sigmas)) + 1
    if min(x.shape[-2:]) < need:
        raise ValueError(f"MS-SSIM with σ up to {max(sigmas)} needs patches of at least {need}x{need} px")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    xc = x - x.mean(dim=(-2, -1), keepdim=True)
    yc = y - y.mean(dim=(-2, -1), keepdim=True)
    cs_product = torch.ones_like(x)
    g = None
    for sigma in sigmas:
        g = _kernel_1d(sigma, x.shape[1], x.device, x.dtype)
        mu_xc, mu_yc = _blur(xc, g), _blur(yc, g)
        var_x = _blur(xc * xc, g) - mu_xc**2
        var_y = _blur(yc * yc, g) - mu_yc**2
        cov = _blur(xc * yc, g) - mu_xc * mu_yc
        cs_product = cs_product * (2 * cov + c2) / (var_x + var_y + c2)
    mu_x, mu_y = _blur(x, g), _blur(y, g)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return luminance * cs_product, g


class MixLoss(nn.Module):
    """α·(1 − MS-SSIM) + (1 − α)·G_σM ⊗ |pred − target| (α = 0.84), separable blurs."""

    def __init__(self, alpha: float = 0.84, loss_weight: float = 1.0, sigmas: Sequence[float] = ZHAO_SIGMAS) -> None:
        super().__init__()
        if not 0 <= alpha <= 1:
            raise ValueError(f"Mix loss alpha must be in [0, 1], got {alpha}")
        self.alpha, self.loss_weight, self.sigmas = alpha, loss_weight, tuple(sigmas)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ms_ssim, g = ms_ssim_map(pred, target, self.sigmas)
        weighted_l1 = _blur((pred - target).abs(), g)
        loss = self.alpha * (1 - ms_ssim.mean()) + (1 - self.alpha) * weighted_l1.mean()
        return self.loss_weight * loss


if __name__ == "__main__":  # equivalence and speed check against the project's implementation
    import time

    from src.losses import MixLoss as Reference

    torch.manual_seed(0)
    hr = torch.rand(8, 3, 96, 96)
    sr = (hr + 0.1 * torch.randn_like(hr)).clamp(0, 1).requires_grad_(True)
    sr2 = sr.detach().clone().requires_grad_(True)
    t0 = time.perf_counter()
    a = Reference()(sr, hr)
    a.backward()
    t1 = time.perf_counter()
    b = MixLoss()(sr2, hr)
    b.backward()
    t2 = time.perf_counter()
    print(f"reference {a.item():.8f} ({t1 - t0:.2f} s fwd+bwd)  separable {b.item():.8f} ({t2 - t1:.2f} s)")
    print(f"|Δloss| {abs(a.item() - b.item()):.2e}  max |Δgrad| {(sr.grad - sr2.grad).abs().max().item():.2e}")
