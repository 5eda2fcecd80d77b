"""MATLAB-compatible bicubic ``imresize`` in pure torch, and ``modcrop``.

The algorithm follows MATLAB's ``imresize`` (method ``'bicubic'``) step by step:

* cubic convolution kernel with ``a = -0.5`` (Keys), support ``[-2, 2]``;
* when downscaling (``scale < 1``) with antialiasing, the kernel is stretched by ``1 / scale``
  (``h(x) = scale * cubic(scale * x)``, kernel width ``4 / scale``);
* for output pixel ``x`` (1-based), the input coordinate is ``u = x / scale + 0.5 * (1 - 1 / scale)``;
  the taps are ``left + 0..P-1`` with ``left = floor(u - width / 2)`` and ``P = ceil(width) + 2``;
* the weights of each output pixel are normalised to sum to 1, and out-of-range tap indices are
  mirrored (``'symmetric'`` padding: ``1..n, n..1, 1..n, ...``), as current MATLAB releases do;
* the dimension with the smaller scale factor is resized first (MATLAB's order), height first on ties.

Two MATLAB behaviours that matter for reproducing *published* files are available as options:

* ``boundary="replicate"``: older MATLAB releases clamped out-of-range tap indices to ``[1, n]``
  (replicating the end points) instead of mirroring them. The Set5/Set14 LR files shipped with SelfExSR
  (our ``benchmarks/``) were made that way: with mirroring, the first/last LR rows and columns
  differ by up to ~10 grey levels.
* ``emulate_uint8=True``: MATLAB resizing a ``uint8`` image rounds (half away from zero) and saturates
  the result of *each* 1-D pass to ``uint8``. Resizing the float image once and rounding at the end
  differs by 1 grey level on ~15% of the pixels, and by more where bicubic overshoot is clipped between
  the passes. Together with ``boundary="replicate"`` this reproduces the shipped LR files bit for bit.

``contributions`` drops tap columns whose weights are all zero, as MATLAB does (in the dense matrix form
a zero weight contributes nothing anyway).

By default each 1-D resize is one matmul with a dense ``(out, in)`` matrix built in float64 (cached per
``(in, out, scale, antialiasing, boundary)`` on the CPU, then per device and dtype) and cast to the
input's dtype; it is differentiable and runs on any device.
Without ``emulate_uint8`` intermediate results stay in floating point, as MATLAB does for float input.

kornia has no MATLAB-compatible resize: its closest, ``kornia.geometry.transform.rescale(x, 1/4, 'bicubic',
antialias=True)``, pre-blurs with a Gaussian instead of stretching the cubic kernel and lands 43.7 dB PSNR (max
|diff| 0.07) from this function on 16 photos, 3.5x slower (``experiments/benchmarks/kornia/results.md``).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

import torch

from src.degradations.numerics import to_device

__all__ = ["contributions", "imresize", "modcrop", "resize_weights"]

Boundary = Literal["symmetric", "replicate"]


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``), elementwise, float64."""
    absx = x.abs()
    absx2 = absx * absx
    absx3 = absx2 * absx
    inner = (1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1).to(x.dtype)
    outer = (-0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0) * ((absx > 1) & (absx <= 2)).to(x.dtype)
    return inner + outer


@lru_cache(maxsize=256)
def contributions(
    in_length: int, out_length: int, scale: float, antialiasing: bool = True, boundary: str = "symmetric"
) -> tuple[torch.Tensor, torch.Tensor]:
    """MATLAB's ``contributions``: taps of each output sample (float64 / int64 CPU tensors, cached).

    Returns:
        ``(weights, indices)``, both (out_length, K): output sample ``i`` is
        ``sum_k weights[i, k] * x[indices[i, k]]`` with 0-based ``indices``; tap columns whose weights are
        all zero are dropped, as MATLAB does. Treat the returned tensors as read-only.
    """
    kernel_width = 4.0
    stretch = scale < 1 and antialiasing
    if stretch:
        kernel_width = kernel_width / scale

    x = torch.arange(1, out_length + 1, dtype=torch.float64)  # 1-based output coordinates
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = torch.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left.unsqueeze(1) + torch.arange(taps, dtype=torch.float64).unsqueeze(0)  # 1-based, (out, P)
    dist = u.unsqueeze(1) - indices
    weights = scale * _cubic(scale * dist) if stretch else _cubic(dist)
    # Row sums accumulated tap by tap (left to right), so that the normalised weights are bit-identical
    # to MATLAB's ``weights ./ sum(weights, 2)``.
    total = weights[:, 0].clone()
    for k in range(1, taps):
        total = total + weights[:, k]
    weights = weights / total.unsqueeze(1)

    idx0 = indices.to(torch.int64) - 1  # 0-based
    if boundary == "symmetric":  # aux = [1..n, n..1]; index = aux(mod(idx - 1, 2n) + 1)
        aux = torch.cat([torch.arange(in_length), torch.arange(in_length - 1, -1, -1)])
        cols = aux[torch.remainder(idx0, 2 * in_length)]
    elif boundary == "replicate":  # older MATLAB: index = min(max(1, idx), n)
        cols = idx0.clamp(0, in_length - 1)
    else:
        raise ValueError(f"boundary must be 'symmetric' or 'replicate', got {boundary!r}")

    keep = weights.ne(0).any(dim=0)  # MATLAB: kill = find(~any(weights, 1))
    return weights[:, keep].contiguous(), cols[:, keep].contiguous()


@lru_cache(maxsize=256)
def _weights_cpu64(in_length: int, out_length: int, scale: float, antialiasing: bool, boundary: str) -> torch.Tensor:
    """Dense (out_length, in_length) float64 CPU matrix of MATLAB's ``contributions``."""
    weights, cols = contributions(in_length, out_length, scale, antialiasing, boundary)
    matrix = torch.zeros(out_length, in_length, dtype=torch.float64)
    matrix.scatter_add_(1, cols, weights)  # mirrored taps can hit the same input sample: add them
    return matrix


_DEVICE_CACHE: dict[tuple, torch.Tensor] = {}
_DEVICE_CACHE_MAX = 64


def resize_weights(
    in_length: int,
    out_length: int,
    scale: float,
    antialiasing: bool = True,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
    boundary: Boundary = "symmetric",
) -> torch.Tensor:
    """MATLAB bicubic 1-D resize as a dense matrix of shape (out_length, in_length).

    ``y = W @ x`` resizes a signal ``x`` of length ``in_length``; each row sums to 1. Built in float64,
    then cast to ``dtype`` on ``device`` (cached).
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    key = (in_length, out_length, float(scale), bool(antialiasing), boundary, device, dtype)
    cached = _DEVICE_CACHE.get(key)
    if cached is None:
        cached = to_device(_weights_cpu64(in_length, out_length, float(scale), bool(antialiasing), boundary),
                           device, dtype)
        if len(_DEVICE_CACHE) >= _DEVICE_CACHE_MAX:
            _DEVICE_CACHE.pop(next(iter(_DEVICE_CACHE)))
        _DEVICE_CACHE[key] = cached
    return cached


def imresize(
    x: torch.Tensor,
    scale: float | None = None,
    antialiasing: bool = True,
    size: tuple[int, int] | None = None,
    *,
    boundary: Boundary = "symmetric",
    emulate_uint8: bool = False,
) -> torch.Tensor:
    """Resize images exactly like MATLAB ``imresize(x, scale, 'bicubic')`` (float input).

    Args:
        x: float tensor (C, H, W) or (N, C, H, W), any device and float dtype. Values are not
            clamped (bicubic overshoots, e.g. [0, 1] input can give slightly negative values).
        scale: scale factor; the output is ``(ceil(H * scale), ceil(W * scale))`` as in MATLAB.
        antialiasing: stretch the kernel when downscaling (MATLAB's default ``true``).
        size: output ``(H_out, W_out)``; then the per-dimension scale is ``out / in`` as in MATLAB.
            Exactly one of ``scale`` and ``size`` must be given.
        boundary: ``"symmetric"`` (mirror, current MATLAB) or ``"replicate"`` (clamped indices, older
            MATLAB releases; what made the shipped Set5/Set14 LR files).
        emulate_uint8: treat ``x`` as a ``uint8`` image scaled to [0, 1] (it is rounded to the 1/255 grid
            first) and, as MATLAB does for uint8 input, round (half away from zero) and saturate the result
            of each 1-D pass to uint8. Computed in float64 tap by tap in MATLAB's order (bit-exact); the
            output is on the 1/255 grid, in x's dtype. Slower than the default matmul path.

    Returns:
        Tensor of the same rank, dtype and device, with the last two dimensions resized.
    """
    if x.ndim not in (3, 4):
        raise ValueError(f"imresize expects a (C, H, W) or (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"imresize expects a floating-point tensor, got dtype {x.dtype}")
    if (scale is None) == (size is None):
        raise ValueError("imresize: give exactly one of `scale` and `size`")

    in_h, in_w = int(x.shape[-2]), int(x.shape[-1])
    if scale is not None:
        scale = float(scale)
        if not scale > 0:
            raise ValueError(f"imresize: scale must be positive, got {scale}")
        scale_h = scale_w = scale
        out_h, out_w = math.ceil(scale * in_h), math.ceil(scale * in_w)
    else:
        out_h, out_w = int(size[0]), int(size[1])
        if out_h <= 0 or out_w <= 0:
            raise ValueError(f"imresize: output size must be positive, got {size}")
        scale_h, scale_w = out_h / in_h, out_w / in_w

    # MATLAB: [~, order] = sort(scale) -- stable, so height first on ties.
    order = ("h", "w") if scale_h <= scale_w else ("w", "h")
    if emulate_uint8:
        return _imresize_uint8(x, order, (in_h, out_h, scale_h), (in_w, out_w, scale_w), antialiasing, boundary)

    out = x
    for dim in order:
        if dim == "h":
            if scale_h == 1.0 and in_h == out_h:  # identity (MATLAB's weights are exactly [.., 0, 1, 0, ..])
                continue
            weight = resize_weights(in_h, out_h, scale_h, antialiasing, out.device, out.dtype, boundary)
            out = torch.matmul(weight, out)  # (out_h, in_h) @ (..., in_h, W)
        else:
            if scale_w == 1.0 and in_w == out_w:
                continue
            weight = resize_weights(in_w, out_w, scale_w, antialiasing, out.device, out.dtype, boundary)
            out = torch.matmul(out, weight.t())  # (..., H, in_w) @ (in_w, out_w)
    return out.contiguous()


def _imresize_uint8(
    x: torch.Tensor,
    order: tuple[str, str],
    geom_h: tuple[int, int, float],
    geom_w: tuple[int, int, float],
    antialiasing: bool,
    boundary: str,
) -> torch.Tensor:
    """Bit-exact emulation of MATLAB ``imresize`` on a uint8 image (values k/255 in ``x``).

    Works on 0..255 values in float64 and accumulates each output sample tap by tap, in MATLAB's order,
    so that exact .5 ties round the same way; after each pass: round half away from zero, saturate.
    The loop runs over the kernel taps (at most ``ceil(4 / scale) + 2``), not over pixels.
    """
    out = torch.floor(x.to(torch.float64).clamp(0, 1) * 255.0 + 0.5)  # MATLAB im2uint8
    for dim in order:
        in_len, out_len, sc = geom_h if dim == "h" else geom_w
        if sc == 1.0 and in_len == out_len:
            continue
        weights, cols = contributions(in_len, out_len, sc, antialiasing, boundary)
        weights, cols = weights.to(out.device), cols.to(out.device)
        axis = -2 if dim == "h" else -1
        shape = (-1, 1) if dim == "h" else (1, -1)
        out_shape = list(out.shape)
        out_shape[axis] = out_len
        acc = torch.zeros(out_shape, dtype=torch.float64, device=out.device)
        tap = torch.empty_like(acc)
        for k in range(weights.shape[1]):  # acc += w_k * x[idx_k], in place (no per-tap allocations)
            torch.index_select(out, axis, cols[:, k], out=tap)
            tap.mul_(weights[:, k].view(shape))
            acc.add_(tap)
        out = acc.add_(0.5).floor_().clamp_(0.0, 255.0)
    return (out / 255.0).to(x.dtype).contiguous()


def modcrop(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the last two dimensions of ``x`` (..., H, W) to multiples of ``scale``.

    The bottom rows and right columns are dropped (MATLAB ``modcrop``); any rank >= 2, any dtype.
    """
    scale = int(scale)
    if scale < 1:
        raise ValueError(f"modcrop: scale must be a positive integer, got {scale}")
    if x.ndim < 2:
        raise ValueError(f"modcrop expects at least 2 dimensions, got shape {tuple(x.shape)}")
    h, w = x.shape[-2], x.shape[-1]
    return x[..., : h - h % scale, : w - w % scale]
