"""Pixel losses: names, values, Charbonnier's limits."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from src.losses.pixel import PIXEL_LOSSES, CharbonnierLoss, build_pixel_loss


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 8, 8, generator=gen), torch.rand(2, 3, 8, 8, generator=gen)


def test_names_build_the_right_modules():
    assert set(PIXEL_LOSSES) == {"l1", "mse", "charbonnier"}
    assert isinstance(build_pixel_loss("l1"), nn.L1Loss)
    assert isinstance(build_pixel_loss("mse"), nn.MSELoss)
    assert isinstance(build_pixel_loss("charbonnier"), CharbonnierLoss)


def test_l1_and_mse_values():
    pred = torch.tensor([0.0, 0.5, 1.0, 0.25])
    target = torch.tensor([0.5, 0.5, 0.0, 0.0])
    assert build_pixel_loss("l1")(pred, target).item() == pytest.approx((0.5 + 0 + 1 + 0.25) / 4)
    assert build_pixel_loss("mse")(pred, target).item() == pytest.approx((0.25 + 0 + 1 + 0.0625) / 4)


def test_charbonnier_zero_error_is_eps():
    x = torch.rand(1, 3, 5, 5)
    loss = build_pixel_loss("charbonnier")
    assert loss.eps == 1e-3
    assert loss(x, x.clone()).item() == pytest.approx(1e-3, rel=1e-6)
    assert CharbonnierLoss(eps=0.1)(x, x.clone()).item() == pytest.approx(0.1, rel=1e-6)


def test_charbonnier_close_to_l1_for_large_errors():
    pred, target = _pair(1)
    target = target + 2.0  # every error is at least 1, far above eps
    char = build_pixel_loss("charbonnier")(pred, target).item()
    l1 = nn.L1Loss()(pred, target).item()
    assert char > l1  # sqrt(d^2 + eps^2) > |d|
    assert char - l1 < 1e-6  # <= eps^2 / (2 |d|) = 5e-7
    # on random errors (including tiny ones) it stays between L1 and L1 + eps
    pred, target = _pair(2)
    char = build_pixel_loss("charbonnier")(pred, target).item()
    l1 = nn.L1Loss()(pred, target).item()
    assert l1 < char <= l1 + 1e-3


def test_charbonnier_exact_value_and_gradient():
    pred = torch.tensor([0.3, 0.0], requires_grad=True)
    target = torch.tensor([0.0, 0.0])
    eps = 0.4
    loss = CharbonnierLoss(eps)(pred, target)
    assert loss.item() == pytest.approx((math.sqrt(0.09 + 0.16) + 0.4) / 2)
    loss.backward()
    # d/dx sqrt(x^2 + eps^2) / N = x / sqrt(x^2 + eps^2) / N: finite (0) at zero error, unlike L1's kink
    assert pred.grad.tolist() == pytest.approx([0.3 / 0.5 / 2, 0.0])


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="'l2'") as info:
        build_pixel_loss("l2")
    for name in PIXEL_LOSSES:
        assert name in str(info.value)
