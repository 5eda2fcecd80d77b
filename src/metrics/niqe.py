"""NIQE (Mittal, Soundararajan and Bovik, "Making a 'Completely Blind' Image Quality Analyzer", 2013).

A reimplementation of the official MATLAB release (``niqe_release``: ``computequality.m``,
``computefeature.m``, ``estimateaggdparam.m``) as the PIRM 2018 challenge code calls it
(``utils/calc_scores.m``: ``convert_shave_image`` then ``computequality(im, 96, 96, 0, 0, mu_prisparam,
cov_prisparam)``). Lower is better.

Steps (all in float64):

1. Luminance as PIRM computes it: the image is quantized to uint8 values, converted with MATLAB
   ``rgb2ycbcr`` and the Y channel is kept as **uint8** (i.e. rounded, half away from zero) before
   ``double(im)``; then ``crop_border`` pixels are shaved from every border. A one-channel input is treated
   as the gray image it is, i.e. as R = G = B (so a gray image and its RGB expansion give the same value).
   ``convert_to="gray"`` uses MATLAB ``rgb2gray`` instead (what ``computequality.m`` does by itself when it
   is given an RGB image); gray input is then used as it is.
2. The image is cropped (top-left kept) to a multiple of the 96x96 block size.
3. Two scales; at each: MSCN coefficients ``(I - mu) / (sigma + 1)`` with a 7x7 Gaussian window
   (sigma 7/6, normalised, ``imfilter(..., 'replicate')``); per block (96x96, then 48x48 at the second
   scale) 18 features: the AGGD fit (alpha, mean of the two betas) of the coefficients, and for the 4
   neighbour products (``circshift`` of the block by [0 1], [1 0], [1 1], [1 -1], wrapping *inside* the
   block as ``blkproc`` hands the block to ``computefeature``) the AGGD alpha, mean, left and right
   beta. The shape parameter comes from the same table MATLAB uses (``gam = 0.2:0.001:10``, nearest
   ``r_gam`` to the normalised moment ratio; an undefined ratio gives MATLAB's ``min`` index 1, alpha 0.2).
   The second scale is MATLAB ``imresize(im, 0.5)`` (bicubic, antialiased) of the cropped image.
4. All blocks are used: the release ``computequality.m`` computes a per-block sharpness but does not
   select blocks with it (only the model *training* code, ``estimatemodelparam.m``, thresholds sharpness).
5. ``nanmean`` / ``nancov`` (rows with a NaN dropped for the covariance, unbiased) of the block features,
   then ``sqrt((mu_p - mu) pinv((cov_p + cov) / 2) (mu_p - mu)')`` with MATLAB's ``pinv`` tolerance.

The pristine model (``mu_prisparam`` 36, ``cov_prisparam`` 36x36) is the official release's
``modelparameters.mat``, shipped as ``src/metrics/data/niqe_pris_params.npz`` (see the README there).
NIQE of Set14 ``baboon.png`` (no crop) is 5.72957 in MATLAB.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from scipy.special import gamma as _gamma_fn

from src.degradations.resize import imresize
from src.metrics.fidelity import quantize, quantized_gray, quantized_y

__all__ = [
    "NIQE_BLOCK_SIZE",
    "load_pristine_params",
    "matlab_luminance",
    "nearest_in_table",
    "niqe",
    "niqe_features",
    "pinv_matlab",
]

NIQE_BLOCK_SIZE = 96
_PARAMS_FILE = Path(__file__).resolve().parent / "data" / "niqe_pris_params.npz"
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # computefeature.m, MATLAB circshift offsets (rows, cols)


@lru_cache(maxsize=1)
def _pristine_cached(path: str) -> tuple[torch.Tensor, torch.Tensor]:
    with np.load(path) as data:
        mu = torch.from_numpy(np.asarray(data["mu_prisparam"], dtype=np.float64).reshape(-1).copy())
        cov = torch.from_numpy(np.asarray(data["cov_prisparam"], dtype=np.float64).copy())
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise ValueError(f"{path}: expected mu_prisparam (36,) and cov_prisparam (36, 36), got {mu.shape}, {cov.shape}")
    return mu, cov


def load_pristine_params(path: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The NIQE pristine MVG model: ``(mu_prisparam (36,), cov_prisparam (36, 36))`` float64 CPU tensors.

    Read from ``src/metrics/data/niqe_pris_params.npz`` (or ``path``) on first use and cached.
    """
    path = Path(path) if path is not None else _PARAMS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"NIQE pristine parameters not found: {path}. Regenerate them with "
            "`python experiments/metrics/make_niqe_params.py path/to/modelparameters.mat` "
            "(the official NIQE release file; see src/metrics/data/README.md)."
        )
    return _pristine_cached(str(path))


# --- MATLAB helpers ------------------------------------------------------------------------------------------
def _gaussian_1d(size: int, sigma: float) -> torch.Tensor:
    """1-D factor of ``fspecial('gaussian', size, sigma)`` (normalised; its outer product is the 2-D window)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_replicate(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """``imfilter(x, taps' * taps, 'replicate')`` (same size) for x (..., H, W): separable, float64.

    Sums of shifted slices of the edge-padded image (deterministic; faster than float64 conv2d on CPU).
    """
    r = taps.numel() // 2
    out = x
    for dim in (-2, -1):
        n = out.shape[dim]
        pad_shape = list(out.shape)
        pad_shape[dim] = r
        first = out.narrow(dim, 0, 1).expand(pad_shape)
        last = out.narrow(dim, n - 1, 1).expand(pad_shape)
        padded = torch.cat([first, out, last], dim=dim)
        acc = padded.narrow(dim, 0, n) * taps[0]
        for i in range(1, taps.numel()):
            acc.add_(padded.narrow(dim, i, n), alpha=float(taps[i]))
        out = acc
    return out


@lru_cache(maxsize=4)
def _colon(start: float, step: float, stop: float) -> tuple[float, ...]:
    """MATLAB ``start:step:stop`` (values ``start + k * step``; within an ulp of MATLAB's colon)."""
    n = int(math.floor((stop - start) / step + 1e-10)) + 1
    return tuple(start + k * step for k in range(n))


def nearest_in_table(values: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Index of ``table`` nearest to each value: MATLAB ``[~, idx] = min(abs(table - v))`` (first on ties).

    ``table`` must be strictly monotonic (increasing or decreasing). NaN values give index 0 (MATLAB's
    ``min`` of an all-NaN vector returns index 1). Exact: the two neighbours of the insertion point are
    compared, so no (values x table) matrix is built.
    """
    n = table.numel()
    increasing = bool(table[-1] > table[0])
    asc = table if increasing else table.flip(0)
    v = values.reshape(-1)
    pos = torch.searchsorted(asc, v.contiguous()).clamp(1, n - 1)
    lo, hi = pos - 1, pos  # ascending positions
    d_lo = (asc[lo] - v).abs()
    d_hi = (asc[hi] - v).abs()
    if increasing:  # ties -> smaller original index = lo
        idx = torch.where(d_hi < d_lo, hi, lo)
    else:  # original index = n - 1 - asc index; ties -> smaller original index = larger asc index (hi)
        idx_asc = torch.where(d_lo < d_hi, lo, hi)
        idx = n - 1 - idx_asc
    idx = torch.where(torch.isnan(v), torch.zeros_like(idx), idx)
    return idx.reshape(values.shape)


@lru_cache(maxsize=2)
def _aggd_table() -> tuple[torch.Tensor, torch.Tensor]:
    """``gam = 0.2:0.001:10`` and ``r_gam = gamma(2./gam).^2 ./ (gamma(1./gam) .* gamma(3./gam))``."""
    gam = np.array(_colon(0.2, 0.001, 10.0), dtype=np.float64)
    r_gam = _gamma_fn(2.0 / gam) ** 2 / (_gamma_fn(1.0 / gam) * _gamma_fn(3.0 / gam))
    if not np.all(np.diff(r_gam) > 0):  # nearest_in_table relies on it
        raise AssertionError("AGGD r_gam table is not strictly increasing")
    return torch.from_numpy(gam), torch.from_numpy(r_gam)


def _gamma_t(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(torch.lgamma(x))


def estimate_aggd(vec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``estimateaggdparam.m`` on each row of ``vec`` (B, N): returns ``(alpha, betal, betar)``, each (B,).

    A row without negative (or positive) samples has an undefined left (right) spread: NaN, as MATLAB's
    ``mean`` of an empty vector; alpha then comes from MATLAB ``min``'s NaN rule (index 1, alpha 0.2).
    """
    gam, r_gam = _aggd_table()
    neg = vec < 0
    pos = vec > 0
    sq = vec * vec
    leftstd = torch.sqrt((sq * neg).sum(-1) / neg.sum(-1))  # 0/0 -> NaN like MATLAB
    rightstd = torch.sqrt((sq * pos).sum(-1) / pos.sum(-1))
    gammahat = leftstd / rightstd
    rhat = vec.abs().mean(-1) ** 2 / sq.mean(-1)
    rhatnorm = (rhat * (gammahat**3 + 1) * (gammahat + 1)) / ((gammahat**2 + 1) ** 2)
    alpha = gam[nearest_in_table(rhatnorm, r_gam)]
    scale = torch.sqrt(_gamma_t(1.0 / alpha) / _gamma_t(3.0 / alpha))
    return alpha, leftstd * scale, rightstd * scale


def _block_features(structdis: torch.Tensor, block: int) -> torch.Tensor:
    """``blkproc(structdis, [block block], [0 0], @computefeature)``: (H, W) -> (num_blocks, 18)."""
    h, w = structdis.shape
    rows, cols = h // block, w // block
    # MATLAB order of the blocks (column-major over the block grid); the statistics do not depend on it.
    blocks = structdis.reshape(rows, block, cols, block).permute(2, 0, 1, 3).reshape(rows * cols, block, block)
    flat = blocks.reshape(blocks.shape[0], -1)
    feats = []
    alpha, betal, betar = estimate_aggd(flat)
    feats += [alpha, (betal + betar) / 2.0]
    for shift in _SHIFTS:
        pair = flat * torch.roll(blocks, shifts=shift, dims=(1, 2)).reshape_as(flat)
        alpha, betal, betar = estimate_aggd(pair)
        meanparam = (betar - betal) * (_gamma_t(2.0 / alpha) / _gamma_t(1.0 / alpha))
        feats += [alpha, meanparam, betal, betar]
    return torch.stack(feats, dim=1)


def _mscn(im: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    mu = _filter_replicate(im, window)
    sigma = torch.sqrt((_filter_replicate(im * im, window) - mu * mu).abs())
    return (im - mu) / (sigma + 1.0)


def niqe_features(im: torch.Tensor, block_size: int = NIQE_BLOCK_SIZE) -> torch.Tensor:
    """Per-block NIQE features of a luminance image (H, W) (float64, 0..255 values), MATLAB order of columns.

    The image is cropped to a multiple of ``block_size``; returns (num_blocks, 36): 18 features at full
    resolution, then 18 at half resolution.
    """
    if im.ndim != 2:
        raise ValueError(f"niqe_features expects an (H, W) luminance image, got shape {tuple(im.shape)}")
    if block_size % 2:
        raise ValueError(f"block_size must be even (the second scale uses block_size / 2), got {block_size}")
    h, w = im.shape
    rows, cols = h // block_size, w // block_size
    if rows == 0 or cols == 0:
        raise ValueError(
            f"NIQE needs at least {block_size}x{block_size} pixels (one block of its {block_size}x{block_size} "
            f"block size) after cropping the border, got {h}x{w}"
        )
    im = im.to(torch.float64)[: rows * block_size, : cols * block_size]
    window = _gaussian_1d(7, 7.0 / 6.0).to(im.device)
    feats = []
    for scale in (1, 2):
        feats.append(_block_features(_mscn(im, window), block_size // scale))
        if scale == 1:
            im = imresize(im.unsqueeze(0), scale=0.5).squeeze(0)  # MATLAB imresize(im, 0.5), bicubic + AA
    return torch.cat(feats, dim=1)


def _nancov(x: torch.Tensor) -> torch.Tensor | float:
    """MATLAB ``nancov``: rows with a NaN dropped, normalised by n - 1 (by n when n == 1).

    A single observation vector (one block) is a vector for MATLAB: its (NaN-ignoring) variance is returned.
    """
    if x.shape[0] == 1:  # isvector(x): variance of the values
        v = x[0][~torch.isnan(x[0])]
        n = v.numel()
        return float(((v - v.mean()) ** 2).sum() / max(n - 1, 1)) if n else float("nan")
    good = ~torch.isnan(x).any(dim=1)
    x = x[good]
    n = x.shape[0]
    if n == 0:
        return torch.full((x.shape[1], x.shape[1]), float("nan"), dtype=x.dtype)
    xc = x - x.mean(dim=0, keepdim=True)
    return xc.T @ xc / (n - 1 if n > 1 else 1)


def pinv_matlab(a: torch.Tensor) -> torch.Tensor:
    """MATLAB ``pinv(A)``: singular values below ``max(size(A)) * eps(max(s))`` are dropped."""
    u, s, vh = torch.linalg.svd(a)
    if s.numel() == 0 or not torch.isfinite(s).all():
        return torch.full_like(a.T, float("nan"))
    tol = max(a.shape) * float(np.spacing(float(s.max())))
    keep = s > tol
    return (vh[keep].T / s[keep]) @ u[:, keep].T


def matlab_luminance(img: torch.Tensor, convert_to: str = "y") -> torch.Tensor:
    """(C, H, W) float in [0, 1] -> (H, W) float64 luminance with integer values (a MATLAB uint8 image).

    The image is quantized to uint8 values first. ``"y"``: MATLAB ``rgb2ycbcr`` Y rounded to uint8, a gray
    image being treated as R = G = B; ``"gray"``: MATLAB ``rgb2gray`` (rounded), a gray image as it is.
    """
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"expected a (3, H, W) RGB or (1, H, W) gray tensor, got shape {tuple(img.shape)}")
    q = quantize(img.detach().cpu())  # uint8 values as float64
    if convert_to == "y":
        rgb = q.expand(3, -1, -1) if q.shape[0] == 1 else q  # gray = R = G = B
        return quantized_y(rgb, rounding=True)
    if convert_to == "gray":
        return q[0] if q.shape[0] == 1 else quantized_gray(q, rounding=True)
    raise ValueError(f"convert_to must be 'y' or 'gray', got {convert_to!r}")


def niqe(
    img: torch.Tensor,
    crop_border: int = 0,
    *,
    convert_to: Literal["y", "gray"] = "y",
    block_size: int = NIQE_BLOCK_SIZE,
) -> float:
    """NIQE of one image, as the official MATLAB code computes it in the PIRM 2018 protocol (lower is better).

    Args:
        img: float tensor (3, H, W) RGB or (1, H, W) gray, values in [0, 1] (clamped and rounded to uint8
            values first, as images are saved).
        crop_border: pixels shaved from every border before scoring (PIRM uses 4; 0 = whole image).
        convert_to: ``"y"`` (MATLAB ``rgb2ycbcr`` Y, rounded to uint8 as PIRM's ``convert_shave_image``; a gray
            image is treated as R = G = B) or ``"gray"`` (MATLAB ``rgb2gray``, what ``computequality.m`` does
            with an RGB image; a gray image is used as it is).
        block_size: block size of the pristine model (96; the shipped model was fitted with 96x96 blocks).

    Returns:
        The NIQE score (float64). The image must be at least ``block_size`` x ``block_size`` after shaving.
    """
    crop_border = int(crop_border)
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    im = matlab_luminance(img, convert_to)
    if crop_border:
        h, w = im.shape
        if 2 * crop_border >= min(h, w):
            raise ValueError(f"crop_border={crop_border} leaves nothing of a {h}x{w} image")
        im = im[crop_border:-crop_border, crop_border:-crop_border]
    feat = niqe_features(im, block_size)
    mu_p, cov_p = load_pristine_params()
    mu_d = torch.nanmean(feat, dim=0)
    cov_d = _nancov(feat)
    invcov = pinv_matlab((cov_p + cov_d) / 2.0)
    diff = (mu_p - mu_d).unsqueeze(0)
    return float(torch.sqrt(diff @ invcov @ diff.T).item())
