"""Per-sample 2-D filtering with reflect padding (the ``filter2D`` of Real-ESRGAN's pipeline), batched.

``filter2d(img, kernels)`` filters image ``i`` of the batch with ``kernels[i]`` (one grouped convolution over
all ``B * C`` planes) after reflect padding by ``k // 2`` (``'reflect'``: the edge pixel is not repeated, as
``cv2.BORDER_REFLECT_101`` / ``np.pad(mode='reflect')``). Padding wider than the image (tiny LR images after a
strong random downscale) keeps reflecting back and forth instead of failing as ``F.pad`` does.
``separable_filter2d`` applies a separable kernel as two 1-D passes (same result as the dense outer-product
kernel up to float rounding, for a fraction of the work).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["filter2d", "reflect_pad", "separable_filter2d"]


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


def filter2d(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Filter each image with its own kernel (correlation, as ``cv2.filter2D``), reflect padding.

    Args:
        img: (B, C, H, W) float.
        kernel: (B, k, k) one kernel per image, or (k, k) / (1, k, k) for the whole batch; ``k`` odd.

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
    kernel = kernel.to(device=img.device, dtype=img.dtype)
    if kernel.shape[0] == 1:
        kernel = kernel.expand(b, k, k)
    elif kernel.shape[0] != b:
        raise ValueError(f"filter2d: {kernel.shape[0]} kernels for a batch of {b}")
    padded = reflect_pad(img.contiguous(), k // 2)
    # one depthwise convolution over all B*C planes (much faster on CPU than a 1-channel conv over B*C images)
    weight = kernel.repeat_interleave(c, dim=0).unsqueeze(1)  # (B*C, 1, k, k)
    out = F.conv2d(padded.reshape(1, b * c, h + k - 1, w + k - 1), weight, groups=b * c)
    return out.reshape(b, c, h, w)


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
    n = b * c
    kx = kernel_x.to(device=img.device, dtype=img.dtype).reshape(1, 1, 1, -1).expand(n, 1, 1, -1).contiguous()
    ky = kernel_y.to(device=img.device, dtype=img.dtype).reshape(1, 1, -1, 1).expand(n, 1, -1, 1).contiguous()
    px, py = kx.shape[-1] // 2, ky.shape[-2] // 2
    planes = img.contiguous().reshape(1, n, h, w)  # depthwise layout: fast path on CPU
    out = F.conv2d(reflect_pad(planes, (px, px, 0, 0)), kx, groups=n)
    out = F.conv2d(reflect_pad(out, (0, 0, py, py)), ky, groups=n)
    return out.reshape(b, c, h, w)
