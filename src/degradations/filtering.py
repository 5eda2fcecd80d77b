"""Per-sample 2-D filtering with reflect padding (the ``filter2D`` of Real-ESRGAN's pipeline), batched, on kornia.

``filter2d(img, kernels)`` filters image ``i`` of the batch with ``kernels[i]`` by ``kornia.filters.filter2d``
(correlation, one depthwise convolution over all ``B * C`` planes, ``'reflect'`` padding by ``k // 2``: the edge
pixel is not repeated, as ``cv2.BORDER_REFLECT_101`` / ``np.pad(mode='reflect')``). Around it, what kornia does
not do:

* Padding wider than the image (tiny LR images after a strong random downscale): kornia pads with ``F.pad``,
  which refuses a reflect pad of ``>= H`` or ``>= W`` pixels. :func:`reflect_pad` keeps reflecting back and forth
  (period ``2n - 2``); the padded image then goes through kornia with ``padding='valid'``.
* Trimming: kernels padded to a common 21 x 21 frame are cropped to the batch's common support first, and
  identity kernels become a multiplication (e.g. the final sinc filter, off for 20% of the samples).
* ``separable_filter2d``: the row pass is ``kornia.filters.filter2d`` with a (1, k) kernel; the column pass is one
  matmul with the reflect-folded (H, H) matrix. On one CPU core, 16 x 3 x 256 x 256 with the USM's 51-tap
  Gaussian: 112 ms here vs 561 ms for ``kornia.filters.gaussian_blur2d`` and 1036 ms for
  ``kornia.filters.filter2d_separable`` (same kernel; all within 5.4e-7 of the float64 dense filter), run
  interleaved on a loaded shared machine: ``experiments/benchmarks/kornia/results.md``.
"""

from __future__ import annotations

import kornia.filters as KF
import torch
import torch.nn.functional as F

from src.degradations.numerics import to_device

__all__ = ["correlate", "filter2d", "reflect_pad", "separable_filter2d"]


def _reflect_index(n: int, before: int, after: int, device: torch.device) -> torch.Tensor:
    """Source indices of a reflect-padded axis of length ``n`` (period ``2n - 2``; ``n == 1`` replicates)."""
    idx = torch.arange(-before, n + after, device=device)
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = torch.remainder(idx, period)
    return torch.where(idx >= n, period - idx, idx)


def reflect_pad(x: torch.Tensor, pad: int | tuple[int, int, int, int]) -> torch.Tensor:
    """Reflect-pad the last two dimensions; ``pad`` is one width or ``(left, right, top, bottom)``."""
    left, right, top, bottom = (pad,) * 4 if isinstance(pad, int) else pad
    h, w = x.shape[-2:]
    if max(left, right) < w and max(top, bottom) < h and x.ndim in (3, 4):
        return F.pad(x, (left, right, top, bottom), mode="reflect")
    rows = _reflect_index(h, top, bottom, x.device)
    cols = _reflect_index(w, left, right, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def filter2d(img: torch.Tensor, kernel: torch.Tensor, trim: bool = True) -> torch.Tensor:
    """Filter each image with its own kernel (correlation, as ``cv2.filter2D``), reflect padding.

    Args:
        img: (B, C, H, W) float.
        kernel: (B, k, k) one kernel per image, or (k, k) / (1, k, k) for the whole batch; ``k`` odd.
        trim: crop the all-zero border shared by the batch's kernels first (kernels padded to a common frame
            may all have a smaller support; identity kernels become a multiplication). One convolution for the
            whole batch either way: splitting the batch by kernel size was measured slower on CPU (the depthwise
            convolution vectorises over the planes).

    Returns:
        (B, C, H, W), contiguous, same dtype as ``img``.
    """
    if img.ndim != 4:
        raise ValueError(f"filter2d expects (B, C, H, W), got shape {tuple(img.shape)}")
    if kernel.ndim == 2:
        kernel = kernel.unsqueeze(0)
    b, c, h, w = img.shape
    k = kernel.shape[-1]
    if k % 2 != 1 or kernel.shape[-2] != k:
        raise ValueError(f"filter2d needs square odd kernels, got {tuple(kernel.shape)}")
    if kernel.shape[0] == 1:
        kernel = kernel.expand(b, k, k)
    elif kernel.shape[0] != b:
        raise ValueError(f"filter2d: {kernel.shape[0]} kernels for a batch of {b}")
    img = img.contiguous()
    if not trim:
        return _grouped_filter(img, to_device(kernel, img.device, img.dtype))
    half = k // 2
    # the support is measured where the kernels are: on the CPU (the pipelines build them there) this needs
    # no host-device synchronisation; kernels on the device cost one
    dist = torch.arange(k, device=kernel.device).sub(half).abs()
    reach = torch.maximum(dist.view(-1, 1), dist.view(1, -1))  # Chebyshev distance to the centre
    r = int(torch.where(kernel != 0, reach, torch.zeros_like(reach)).amax())
    kernel = kernel[:, half - r:half + r + 1, half - r:half + r + 1]
    return _grouped_filter(img, to_device(kernel, img.device, img.dtype))


def _grouped_filter(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) filtered with (B, k, k), reflect padding: kornia's depthwise convolution over all planes."""
    k = kernel.shape[-1]
    if k == 1:
        return img * kernel.view(-1, 1, 1, 1)
    return correlate(img, kernel)


def correlate(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``kornia.filters.filter2d(img, kernel)`` (reflect padding, same size) for any image size.

    Args:
        img: (B, C, H, W).
        kernel: (B, kh, kw) or (1, kh, kw), odd sizes, on ``img``'s device and dtype.
    """
    # a shared kernel is expanded to the batch: kornia then convolves all B * C planes as one depthwise layer
    # (1, B*C, H, W), 4-6x faster on CPU than its (B, C, H, W) layout for a (1, kh, kw) kernel
    kernel = kernel.expand(img.shape[0], -1, -1)
    ph, pw = kernel.shape[-2] // 2, kernel.shape[-1] // 2
    h, w = img.shape[-2:]
    if ph < h and pw < w:
        return KF.filter2d(img, kernel, border_type="reflect")
    return KF.filter2d(reflect_pad(img, (pw, pw, ph, ph)), kernel, padding="valid")


def separable_filter2d(img: torch.Tensor, kernel_x: torch.Tensor, kernel_y: torch.Tensor | None = None):
    """Filter with the separable kernel ``outer(kernel_y, kernel_x)`` as two 1-D passes, reflect padding.

    Args:
        img: (B, C, H, W).
        kernel_x: (k,) applied along the width; kernel_y: (k',) along the height (default ``kernel_x``).
    """
    if img.ndim != 4:
        raise ValueError(f"separable_filter2d expects (B, C, H, W), got shape {tuple(img.shape)}")
    kernel_y = kernel_x if kernel_y is None else kernel_y
    b, c, h, w = img.shape
    kx = to_device(kernel_x, img.device, img.dtype).reshape(1, 1, -1)
    out = correlate(img.contiguous(), kx)
    if h <= _MATRIX_MAX:  # the column pass as one matmul with the reflect-folded (H, H) matrix: ~2x faster on CPU
        matrix = _column_matrix(tuple(kernel_y.double().reshape(-1).tolist()), h, img.device, img.dtype)
        return torch.matmul(matrix, out.reshape(b * c, h, w)).reshape(b, c, h, w)
    return correlate(out, to_device(kernel_y, img.device, img.dtype).reshape(1, -1, 1))


_MATRIX_MAX = 1024
_MATRIX_CACHE: dict[tuple, torch.Tensor] = {}


def _column_matrix(kernel: tuple[float, ...], n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(n, n) matrix M with ``M @ x`` = correlation of the columns of ``x`` with ``kernel``, reflect padding."""
    key = (kernel, n, device, dtype)
    cached = _MATRIX_CACHE.get(key)
    if cached is None:
        k = len(kernel)
        src = _reflect_index(n, k // 2, k // 2, torch.device("cpu"))  # padded row -> source row
        rows = torch.arange(n).view(-1, 1).expand(n, k)
        cols = src[torch.arange(n).view(-1, 1) + torch.arange(k).view(1, -1)]
        weights = torch.tensor(kernel, dtype=torch.float64).view(1, -1).expand(n, k)
        matrix = torch.zeros(n, n, dtype=torch.float64)
        matrix.index_put_((rows.reshape(-1), cols.reshape(-1)), weights.reshape(-1), accumulate=True)
        cached = to_device(matrix, device, dtype)
        if len(_MATRIX_CACHE) >= 32:
            _MATRIX_CACHE.pop(next(iter(_MATRIX_CACHE)))
        _MATRIX_CACHE[key] = cached
    return cached
