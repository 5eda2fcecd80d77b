"""Additive noise with per-sample parameters, batched (Real-ESRGAN's ``*_noise_pt`` functions, reworked).

* Gaussian: ``noise = N(0, 1) * sigma / 255`` per pixel, ``sigma`` per sample on the 0-255 scale; colour
  noise draws each channel independently, gray noise draws one field per sample shared by the channels.
  (The reference draws *one* gray field for the whole batch; here every sample gets its own.)
* Poisson (shot) noise: the image is rounded to 8-bit levels, ``vals = 2^ceil(log2(#distinct levels))`` per
  sample (counted over all channels, as ``len(torch.unique(img[i]))``), ``noise = Poisson(img * vals) / vals
  - img``, scaled per sample by ``scale``; the gray variant uses the luma ``0.2989 R + 0.587 G + 0.114 B``
  (torchvision's ``rgb_to_grayscale`` weights, as Real-ESRGAN; computed by ``kornia.color.rgb_to_grayscale``,
  within 1.2e-7 of torchvision's: 2 of 1M grey pixels of 16 photos round to another 8-bit level) and repeats it
  over the channels.
* ``add_*``: ``out = img + noise``, then ``clip`` to [0, 1] and/or ``rounds`` to 8-bit levels exactly as the
  reference (clip and round: ``clamp(round(out * 255), 0, 255) / 255``).

Random fields come from ``generator`` (``None``: the global RNG). Gaussian fields are drawn on the generator's
device and moved to the image's (so a CPU generator gives the same numbers on every device); Poisson fields
depend on the image and are drawn on its device, so ``generator`` must live there. Control decisions (is any
sample gray?) are taken on the per-sample values where they are given: pass them as Python values or CPU
tensors and no call here waits for the device.
"""

from __future__ import annotations

import kornia.color
import torch

from src.degradations.numerics import cached_constant, to_device

__all__ = [
    "add_gaussian_noise",
    "add_poisson_noise",
    "clip_round",
    "gaussian_noise",
    "poisson_noise",
    "rgb_to_gray",
]

_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision.transforms.functional.rgb_to_grayscale


def _per_sample(value, b: int, ref: torch.Tensor) -> torch.Tensor:
    t = to_device(torch.as_tensor(value, dtype=ref.dtype), ref.device).reshape(-1)
    if t.numel() == 1:
        t = t.expand(b)
    if t.numel() != b:
        raise ValueError(f"per-sample parameter has {t.numel()} values for a batch of {b}")
    return t.view(b, 1, 1, 1)


def _per_sample_bool(value, b: int, device: torch.device) -> tuple[torch.Tensor, bool, bool]:
    """(mask (B, 1, 1, 1) on ``device``, any, all); any/all come from ``value`` where it lives (no sync for a
    CPU value)."""
    t = torch.as_tensor(value).reshape(-1).bool()
    t = t.expand(b) if t.numel() == 1 else t
    return to_device(t, device).view(b, 1, 1, 1), bool(t.any()), bool(t.all())


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Standard normal field drawn on the generator's device, returned on ``like``'s device and dtype."""
    if generator is None or generator.device == like.device:
        return torch.randn(shape, generator=generator, dtype=like.dtype, device=like.device)
    return to_device(torch.randn(shape, generator=generator, dtype=like.dtype, device=generator.device), like.device)


def rgb_to_gray(img: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) luma with torchvision's weights; a 1-channel input is returned as is."""
    if img.shape[1] == 1:
        return img
    # the weights are cached on the image's device: kornia then makes no host-to-device copy
    weights = cached_constant("gray_weights", lambda: torch.tensor(_GRAY_WEIGHTS, dtype=torch.float64),
                              img.device, img.dtype)
    return kornia.color.rgb_to_grayscale(img, rgb_weights=weights)


def clip_round(out: torch.Tensor, clip: bool = True, rounds: bool = False) -> torch.Tensor:
    """The reference's post-processing: clip to [0, 1] and/or round to 8-bit levels."""
    if clip and rounds:
        return torch.clamp((out * 255.0).round(), 0, 255) / 255.0
    if clip:
        return torch.clamp(out, 0, 1)
    if rounds:
        return (out * 255.0).round() / 255.0
    return out


def gaussian_noise(
    img: torch.Tensor, sigma, gray=False, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Gaussian noise for a (B, C, H, W) batch; ``sigma`` (0-255 scale) and ``gray`` per sample or scalar.
    ``generator`` may be a CPU generator for an image on another device (the field is drawn there and moved)."""
    b, c, h, w = img.shape
    sigma = _per_sample(sigma, b, img) / 255.0
    gray, any_gray, all_gray = _per_sample_bool(gray, b, img.device)
    noise = None
    if not all_gray:
        noise = _randn(tuple(img.shape), generator, img)
    if any_gray:
        field = _randn((b, 1, h, w), generator, img)
        noise = field.expand(b, c, h, w) if noise is None else torch.where(gray, field, noise)
    return noise * sigma


def _count_levels(img8: torch.Tensor) -> torch.Tensor:
    """Number of distinct 8-bit levels per sample of a (B, ...) tensor of integer-valued floats in [0, 255]."""
    b = img8.shape[0]
    idx = img8.reshape(b, -1).long()
    hist = torch.zeros(b, 256, dtype=torch.int32, device=img8.device)
    hist.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.int32))
    return (hist > 0).sum(1)


def _poisson_field(img: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    img8 = torch.clamp((img * 255.0).round(), 0, 255)
    rounded = img8 / 255.0
    levels = _count_levels(img8).to(img.dtype)
    vals = torch.exp2(torch.ceil(torch.log2(levels))).view(-1, 1, 1, 1)
    out = torch.poisson(rounded * vals, generator=generator) / vals
    return out - rounded


def poisson_noise(img: torch.Tensor, scale=1.0, gray=False, generator: torch.Generator | None = None):
    """Poisson (shot) noise for a (B, C, H, W) batch; ``scale`` and ``gray`` per sample or scalar."""
    b, c, h, w = img.shape
    gray, any_gray, all_gray = _per_sample_bool(gray, b, img.device)
    noise = None
    if not all_gray:
        noise = _poisson_field(img, generator)
    if any_gray:
        field = _poisson_field(rgb_to_gray(img), generator).expand(b, c, h, w)
        noise = field if noise is None else torch.where(gray, field, noise)
    return noise * _per_sample(scale, b, img)


def add_gaussian_noise(
    img: torch.Tensor,
    sigma,
    gray=False,
    generator: torch.Generator | None = None,
    clip: bool = True,
    rounds: bool = False,
) -> torch.Tensor:
    """``img + gaussian_noise(...)``, then the reference's clip / round."""
    return clip_round(img + gaussian_noise(img, sigma, gray, generator), clip, rounds)


def add_poisson_noise(
    img: torch.Tensor,
    scale=1.0,
    gray=False,
    generator: torch.Generator | None = None,
    clip: bool = True,
    rounds: bool = False,
) -> torch.Tensor:
    """``img + poisson_noise(...)``, then the reference's clip / round."""
    return clip_round(img + poisson_noise(img, scale, gray, generator), clip, rounds)
