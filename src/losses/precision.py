"""Losses run in fp32 with autocast disabled, whatever the trainer's precision.

Under ``bf16-mixed`` / ``16-mixed`` the network may run in half precision, but the losses must not: MS-SSIM's
``var = blur(x·x) − mu²`` cancels away in bf16 (loss 0.28 instead of 0.015 on a 192 px crop, gradient cosine
−0.01 with the fp32 gradient; NaN gradients in fp16) and VGG features in bf16 give a perceptual loss 3.3x too
high near the target. :func:`fp32_loss` wraps a ``forward`` so that its floating-point tensor arguments are
cast to float32 and autocast is off inside it; gradients still flow back into the half-precision network
output through the cast.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])


def _as_fp32(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != torch.float32:
        return value.float()
    return value


@contextlib.contextmanager
def no_autocast(*tensors: Any) -> Iterator[None]:
    """Autocast off inside the block (CPU, CUDA when available, and the device types of ``tensors``)."""
    devices = {t.device.type for t in tensors if isinstance(t, torch.Tensor)} | {"cpu"}
    if torch.cuda.is_available():
        devices.add("cuda")
    with contextlib.ExitStack() as stack:
        for device in sorted(devices & {"cpu", "cuda"}):
            stack.enter_context(torch.autocast(device_type=device, enabled=False))
        yield


def fp32_loss(forward: F) -> F:
    """Decorator for a loss ``forward(self, *args, **kwargs)``: float tensors -> float32, autocast off."""

    @functools.wraps(forward)
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        args = tuple(_as_fp32(a) for a in args)
        kwargs = {k: _as_fp32(v) for k, v in kwargs.items()}
        with no_autocast(*args, *kwargs.values()):
            return forward(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
