"""Device placement and float precision of the degradation path.

* :func:`to_device` moves host tensors (parameters drawn on the CPU generator, kernels, tables) to the batch's
  device with ``non_blocking=True``: a blocking host-to-device copy waits for every queued GPU kernel (a
  ``cudaStreamSynchronize`` per copy), which is what stalls a training loop, while a non-blocking copy from
  pageable memory is staged at once and never waits for the device.
* :func:`cached_constant` keeps per-device copies of small constant tensors (DCT and colour matrices).
* :func:`exact_fp32` turns TF32 off for CUDA convolutions and matmuls inside the block (restored after): on
  Ampere and later GPUs cuDNN convolutions default to TF32 (10-bit mantissa), which moves degraded pixels by
  ~1e-3 against the CPU; degradations are data, not a network, and must be computed in true fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

__all__ = ["autocast_off", "cached_constant", "exact_fp32", "to_device"]


def autocast_off(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast disabled for ``device``'s type (a no-op for types without autocast, e.g. ``meta``)."""
    if device.type in ("cpu", "cuda", "xpu", "mps"):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


def to_device(t: torch.Tensor, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``t`` on ``device`` (and ``dtype``); host-to-device copies are non-blocking (no host synchronisation)."""
    return t.to(device=device, dtype=dtype or t.dtype, non_blocking=True)


_CONSTANTS: dict[tuple, torch.Tensor] = {}


def cached_constant(name: str, make: Callable[[], torch.Tensor], device: torch.device, dtype: torch.dtype
                    ) -> torch.Tensor:
    """``make()`` (a CPU tensor) moved to ``device``/``dtype`` once and cached under ``name``."""
    key = (name, torch.device(device), dtype)
    cached = _CONSTANTS.get(key)
    if cached is None:
        cached = _CONSTANTS[key] = to_device(make(), torch.device(device), dtype)
    return cached


@contextlib.contextmanager
def exact_fp32() -> Iterator[None]:
    """IEEE fp32 (no TF32) for CUDA convolutions and matmuls inside the block; the previous settings after."""
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    if hasattr(conv, "fp32_precision"):  # PyTorch >= 2.9
        saved = (conv.fp32_precision, matmul.fp32_precision)
        conv.fp32_precision = matmul.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision, matmul.fp32_precision = saved
        return
    saved_old = (torch.backends.cudnn.allow_tf32, matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, matmul.allow_tf32 = saved_old
