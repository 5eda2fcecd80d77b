"""Ma et al.'s no-reference SR quality score, part 1: the features (``ma_features``).

Ma, Yang, Yang and Yang, "Learning a no-reference quality metric for single-image
super-resolution", CVIU 2017 (``chaoma99/sr-metric``: ``quality_predict.m``, ``feature_all.m``). Higher is
better (0..10). Three feature groups of the uint8 Y image:

1. local frequency (``block_dct.m``, 18 values): at 3 scales (the image, and twice a 3x3 Gaussian
   (sigma 0.5, zero padding) filter then ``(2:2:end, 2:2:end)`` subsampling), ``blkproc`` with 3x3 blocks
   and a 2-pixel zero-padded border (7x7 windows, stride 3): per window the 7x7 DCT (``dct2``, DC dropped),
   a generalised-Gaussian shape (``gama_gen_gauss``), the coefficient of variation of |coefficients|
   and the variance of three oriented coefficient-of-variations; pooled as the mean of the lowest 10 %
   and the mean of all (shape), the mean from ``fix(0.9 n)`` on and of all (the other two);
2. global (``global_gsm.m``, 45 values): a 2-scale, 6-orientation steerable pyramid (matlabPyrTools
   ``buildSFpyr``, Fourier domain) of the 0..255 Y image, divisive normalisation of each oriented band by
   its 3x3 neighbourhood, parent (scale-1 bands 1..5 only, as the original ``nband < Nband - Nor`` test
   gives) and sibling orientations (``norm_sender_normalized.m``, 16/8-pixel guard band), then the GGD
   shape of each normalised band (12) and of each orientation across scales (6), the SSIM contrast-structure
   term between each raw oriented band (``imresize``d to full size) and the high-pass residual (12) and
   between all pairs of normalised scale-1 orientations (15);
3. singular values (``feature_all.m``, 75 values) of the 5x5 distinct blocks (``im2col``, zero padded) of
   the three scales.

Each group goes through its random-forest regression (randomforest-matlab ``regRF_predict``: the mean
over trees of the leaf value, ``x <= split`` goes left; optional bias correction ``coef``) and the score is
``[1 s1 s2 s3] * model.linear``. The trained model is the official release's ``model.mat``, which is not
shipped (see ``MA_MODEL_HELP``); ``load_ma_model`` reads it with ``scipy.io.loadmat``.

The feature extraction follows the MATLAB code operation by operation (float64), but it has not been
compared with MATLAB outputs here (no MATLAB and no model file): treat Ma scores as unverified until a
reference value has been reproduced.

The forests and the model file are in ``src.metrics.ma_model``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from scipy.special import gamma as _gamma_fn

from src.degradations.resize import imresize
from src.metrics.niqe import matlab_luminance, nearest_in_table, pinv_matlab


# --- Ma et al.: shared MATLAB helpers -----------------------------------------------------------------------
def _colon(start: float, step: float, stop: float) -> np.ndarray:
    n = int(math.floor((stop - start) / step + 1e-10)) + 1
    return start + step * np.arange(n, dtype=np.float64)


@lru_cache(maxsize=1)
def _ggd_table() -> tuple[torch.Tensor, torch.Tensor]:
    """``g = 0.03:0.001:10``, ``r = gamma(1./g) .* gamma(3./g) ./ gamma(2./g).^2`` (``gama_gen_gauss.m``)."""
    g = _colon(0.03, 0.001, 10.0)
    r = _gamma_fn(1.0 / g) * _gamma_fn(3.0 / g) / _gamma_fn(2.0 / g) ** 2
    if not np.all(np.diff(r) < 0):  # nearest_in_table relies on strict monotonicity
        raise AssertionError("GGD r table is not strictly decreasing")
    return torch.from_numpy(g), torch.from_numpy(r)


def _gama_gen_gauss(x: torch.Tensor) -> torch.Tensor:
    """``gama_gen_gauss.m`` on each row of ``x`` (..., N): GGD shape from ``var / mean(|x - mean|)^2``."""
    g, r = _ggd_table()
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=True)
    mean_abs = (x - mean).abs().mean(-1) ** 2
    rho = var / (mean_abs + 1e-7)
    return g[nearest_in_table(rho, r)]


def _coeff_var(x: torch.Tensor, eps: float) -> torch.Tensor:
    """``std(abs(x)) / (mean(abs(x)) + eps)`` on each row (unbiased std, as MATLAB ``std``)."""
    a = x.abs()
    return a.std(-1, unbiased=True) / (a.mean(-1) + eps)


def _gauss_1d(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_sep(x: torch.Tensor, taps: torch.Tensor, mode: str) -> torch.Tensor:
    """Separable correlation of (..., H, W) with ``taps' * taps``: ``mode`` 'valid' or 'same_zero'
    (``imfilter`` default: zero boundary, same size)."""
    k = taps.numel()
    out = x
    for dim in (-2, -1):
        if mode == "same_zero":
            r = k // 2
            shape = list(out.shape)
            shape[dim] = r
            z = out.new_zeros(shape)
            out = torch.cat([z, out, z], dim=dim)
        n = out.shape[dim] - k + 1
        acc = out.narrow(dim, 0, n) * taps[0]
        for i in range(1, k):
            acc = acc + out.narrow(dim, i, n) * taps[i]
        out = acc
    return out


# --- Ma et al.: group 1, block DCT --------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``D`` (``dct2(X) = D @ X @ D.T``, MATLAB ``dct2``)."""
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    d = torch.cos(math.pi * (2.0 * i + 1.0) * k / (2.0 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d


def _orientation_index_sets() -> tuple[list[int], list[int], list[int]]:
    """Flat (row-major) indices into a 7x7 DCT of ``oriented{1,2,3}_dct_rho_config3.m`` (nn == 7)."""

    def idx(pairs: list[tuple[int, list[int]]]) -> list[int]:  # 1-based (row, columns) -> flat 0-based
        return [(r - 1) * 7 + (c - 1) for r, cs in pairs for c in cs]

    o1 = idx([(1, list(range(2, 8))), (2, list(range(3, 8))), (3, list(range(5, 8))), (4, list(range(6, 8)))])
    o2 = idx(
        [
            (2, [2]),
            (3, [3, 4]),
            (4, [3, 4, 5]),
            (5, list(range(4, 8))),
            (6, list(range(5, 8))),
            (7, list(range(5, 8))),
        ]
    )
    o3 = [
        (r - 1) * 7 + (c - 1)
        for c, rows in ((1, range(2, 8)), (2, range(3, 8)), (3, range(5, 8)), (4, range(6, 8)))
        for r in rows
    ]
    return o1, o2, o3


def _block_dct_values(im: torch.Tensor, chunk: int = 32768) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-window (gama, coeff_var, orientation variance) of ``blkproc(im, [3 3], [2 2], ...)``."""
    h, w = im.shape
    pad_b = 2 + (-h) % 3
    pad_r = 2 + (-w) % 3
    padded = torch.nn.functional.pad(im.unsqueeze(0).unsqueeze(0), (2, pad_r, 2, pad_b))  # zeros
    windows = torch.nn.functional.unfold(padded, kernel_size=7, stride=3)[0].T  # (nb, 49), row-major 7x7
    d = _dct_matrix(7)
    o1, o2, o3 = (torch.tensor(o) for o in _orientation_index_sets())
    gam, cv, ori = [], [], []
    for start in range(0, windows.shape[0], chunk):
        blocks = windows[start : start + chunk].reshape(-1, 7, 7)
        coeffs = (d @ blocks @ d.T).reshape(-1, 49)
        ac = coeffs[:, 1:]  # DC dropped (first element in any order)
        gam.append(_gama_gen_gauss(ac))
        cv.append(_coeff_var(ac, 1e-7))
        rho = torch.stack([_coeff_var(coeffs[:, o], 1e-8) for o in (o1, o2, o3)], dim=1)
        ori.append(rho.var(dim=1, unbiased=True))
    return torch.cat(gam), torch.cat(cv), torch.cat(ori)


def _block_dct(im: torch.Tensor) -> torch.Tensor:
    """``block_dct.m``: 6 pooled features of one scale."""
    gam, cv, ori = _block_dct_values(im)

    def low10(v: torch.Tensor) -> torch.Tensor:  # mean(sorted(1:ceil(n*0.1)))
        s = torch.sort(v).values
        return s[: math.ceil(s.numel() * 0.1)].mean()

    def high10(v: torch.Tensor) -> torch.Tensor:  # mean(sorted(fix(n*0.9):end)), 1-based start
        s = torch.sort(v).values
        start = max(int(s.numel() * 0.9) - 1, 0)
        return s[start:].mean()

    return torch.stack([low10(gam), gam.mean(), high10(cv), cv.mean(), high10(ori), ori.mean()])


def _ma_pyramid(im1: torch.Tensor) -> list[torch.Tensor]:
    """The three scales of ``feature_all.m``: 3x3 Gaussian (sigma 0.5, zero padding), ``(2:2:end, 2:2:end)``."""
    g = _gauss_1d(3, 0.5)
    ims = [im1]
    for _ in range(2):
        f = _filter_sep(ims[-1], g, "same_zero")
        ims.append(f[1::2, 1::2])
    return ims


def _svd_features(im: torch.Tensor) -> torch.Tensor:
    """``svd(im2col(im, [5 5], 'distinct'))``: singular values of the zero-padded 5x5 blocks (25 values)."""
    h, w = im.shape
    padded = torch.nn.functional.pad(im.unsqueeze(0).unsqueeze(0), (0, (-w) % 5, 0, (-h) % 5))
    cols = torch.nn.functional.unfold(padded, kernel_size=5, stride=5)[0]  # (25, n_blocks)
    if cols.shape[1] < 25:
        raise ValueError(
            f"Ma et al.'s SVD features need at least 25 5x5 blocks at quarter resolution (about 100x100 pixels "
            f"or more); a scale of {h}x{w} has {cols.shape[1]}"
        )
    return torch.linalg.svdvals(cols)


# --- Ma et al.: group 2, steerable pyramid ------------------------------------------------------------------
def _point_op(x: torch.Tensor, lut: torch.Tensor, origin: float, increment: float) -> torch.Tensor:
    """matlabPyrTools ``pointOp`` (MEX): linear interpolation in an equispaced table, end segments extended."""
    pos = (x - origin) / increment
    idx = torch.trunc(pos).to(torch.int64).clamp(0, lut.numel() - 2)  # C (int) cast, then clamped
    lo = lut[idx]
    return lo + (lut[idx + 1] - lo) * (pos - idx.to(pos.dtype))


def _rcos_fn(width: float, position: float) -> tuple[torch.Tensor, torch.Tensor]:
    """matlabPyrTools ``rcosFn(width, position, [0 1])``: raised-cosine table (X, Y), 259 samples."""
    sz = 256
    x = math.pi * torch.arange(-sz - 1, 2, dtype=torch.float64) / (2 * sz)
    y = torch.cos(x) ** 2
    y[0] = y[1]
    y[sz + 2] = y[sz + 1]
    x = position + (2 * width / math.pi) * (x + math.pi / 4)
    return x, y


def build_sf_pyramid(im: torch.Tensor, height: int = 2, order: int = 5) -> list[torch.Tensor]:
    """matlabPyrTools ``buildSFpyr(im, height, order)`` (twidth 1): Fourier-domain steerable pyramid.

    Returns the bands in MATLAB order: high-pass residual, ``order + 1`` oriented bands of each level
    (fine to coarse), low-pass residual; real float64 tensors.
    """
    im = im.to(torch.float64)
    h, w = im.shape
    max_ht = math.floor(math.log2(min(h, w))) - 2
    if height > max_ht:
        raise ValueError(f"cannot build a steerable pyramid of {height} levels on a {h}x{w} image (max {max_ht})")
    nbands = order + 1
    ctr = (math.ceil((h + 0.5) / 2), math.ceil((w + 0.5) / 2))  # 1-based
    xramp = ((torch.arange(1, w + 1, dtype=torch.float64) - ctr[1]) / (w / 2)).unsqueeze(0).expand(h, w)
    yramp = ((torch.arange(1, h + 1, dtype=torch.float64) - ctr[0]) / (h / 2)).unsqueeze(1).expand(h, w)
    angle = torch.atan2(yramp, xramp)
    log_rad = torch.sqrt(xramp**2 + yramp**2)
    log_rad[ctr[0] - 1, ctr[1] - 1] = log_rad[ctr[0] - 1, ctr[1] - 2]
    log_rad = torch.log2(log_rad)

    xrcos, yrcos = _rcos_fn(1.0, -0.5)
    yrcos = torch.sqrt(yrcos)
    yircos = torch.sqrt(1.0 - yrcos**2)
    incr = float(xrcos[1] - xrcos[0])
    lo0mask = _point_op(log_rad, yircos, float(xrcos[0]), incr)
    imdft = torch.fft.fftshift(torch.fft.fft2(im))
    lodft = imdft * lo0mask

    def to_space(dft: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(torch.fft.ifftshift(dft)).real

    hi0 = to_space(imdft * _point_op(log_rad, yrcos, float(xrcos[0]), incr))

    lutsize = 1024
    xcosn = math.pi * torch.arange(-(2 * lutsize + 1), lutsize + 2, dtype=torch.float64) / lutsize
    const = (2 ** (2 * order)) * (math.factorial(order) ** 2) / (nbands * math.factorial(2 * order))
    ycosn = math.sqrt(const) * torch.cos(xcosn) ** order
    factor = complex(1.0, 0.0)
    for _ in range(nbands - 1):  # (-sqrt(-1))^(nbands-1), exact
        factor *= complex(0.0, -1.0)

    bands: list[torch.Tensor] = []
    for _ in range(height):
        xrcos = xrcos - 1.0  # shift origin of the lut by one octave
        incr = float(xrcos[1] - xrcos[0])
        himask = _point_op(log_rad, yrcos, float(xrcos[0]), incr)
        for b in range(nbands):
            anglemask = _point_op(angle, ycosn, float(xcosn[0]) + math.pi * b / nbands, float(xcosn[1] - xcosn[0]))
            bands.append(to_space(factor * lodft * anglemask * himask))
        dims = lodft.shape
        ctr_l = [math.ceil((d + 0.5) / 2) for d in dims]
        lodims = [math.ceil((d - 0.5) / 2) for d in dims]
        loctr = [math.ceil((d + 0.5) / 2) for d in lodims]
        lostart = [c - lc for c, lc in zip(ctr_l, loctr)]  # 0-based (MATLAB ctr - loctr + 1)
        sl = (slice(lostart[0], lostart[0] + lodims[0]), slice(lostart[1], lostart[1] + lodims[1]))
        log_rad, angle, lodft = log_rad[sl], angle[sl], lodft[sl]
        yircos = torch.sqrt(1.0 - yrcos**2).abs()
        lodft = _point_op(log_rad, yircos, float(xrcos[0]), incr) * lodft
    bands.append(to_space(lodft))
    return [hi0, *bands]


def _norm_sender_normalized(bands: list[torch.Tensor], n_scales: int = 2, n_or: int = 6) -> list[torch.Tensor]:
    """``norm_sender_normalized(pyr, pind, 2, 6, 1, 1, 3, 3, 50)``: divisively normalised oriented bands."""
    guardband = 16
    n_band = len(bands) - 1  # size(pind, 1) - 1
    out = []
    for scale in range(1, n_scales + 1):
        for orien in range(1, n_or + 1):
            nband = (scale - 1) * n_or + orien + 1  # 1-based pyramid band
            aux = bands[nband - 1]
            nsy, nsx = aux.shape
            has_parent = nband < n_band - n_or
            nblv, nblh = nsy - 2, nsx - 2
            cols = []
            for ny in (-1, 0, 1):  # shift(y, [ny nx]) then (Ly+1:Ly+nblv, Lx+1:Lx+nblh): y(i - ny, j - nx)
                for nx in (-1, 0, 1):
                    cols.append(aux[1 - ny : 1 - ny + nblv, 1 - nx : 1 - nx + nblh])
            if has_parent:
                auxp = imresize(bands[nband - 1 + n_or].unsqueeze(0), scale=2.0).squeeze(0)[:nsy, :nsx]
                cols.append(auxp[1 : 1 + nblv, 1 : 1 + nblh])
            for neib in range(1, n_or + 1):
                if neib != orien:
                    cols.append(bands[(scale - 1) * n_or + neib][1 : 1 + nblv, 1 : 1 + nblh])
            y = torch.stack([c.reshape(-1) for c in cols], dim=1)  # (nexp, n_cols)
            n_neigh = 9 + int(has_parent)  # N = prod(block) + prnt (siblings not counted, as in the original)
            c_x = y.T @ y / y.shape[0]
            lam, q = torch.linalg.eigh(c_x)
            lam_pos = lam * (lam > 0)
            s_pos = lam_pos.sum()
            lam = lam_pos * lam.sum() / (s_pos + (s_pos == 0).to(lam.dtype))
            c_x = q @ torch.diag(lam) @ q.T
            o_c = aux[1 : 1 + nblv, 1 : 1 + nblh].reshape(-1)
            o_c = o_c - o_c.mean()
            z = torch.sqrt(((y @ pinv_matlab(c_x)) * y / n_neigh).sum(dim=1))
            if bool((z == 0).any()):
                raise ValueError("Ma et al.'s divisive normalisation hit a zero neighbourhood (flat image?)")
            g_c = (o_c / z).reshape(nblv, nblh)
            gb = guardband // 2 ** (scale - 1)
            g_c = g_c[gb:-gb, gb:-gb]
            out.append(g_c - g_c.mean())
    return out


def _ssim_cs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``ssim_index_new(a, b)``'s third output: mean contrast-structure term, 11x11 Gaussian (1.5), 'valid',
    ``C2 = (0.03 * 255)^2`` (whatever the range of the inputs, as in the original)."""
    if min(a.shape) < 11:
        raise ValueError(f"SSIM needs at least 11x11 samples, got {tuple(a.shape)}")
    c2 = (0.03 * 255.0) ** 2
    g = _gauss_1d(11, 1.5)
    stack = _filter_sep(torch.stack([a, b, a * a, b * b, a * b]), g, "valid")
    mu1, mu2, e11, e22, e12 = stack.unbind(0)
    s1 = e11 - mu1 * mu1
    s2 = e22 - mu2 * mu2
    s12 = e12 - mu1 * mu2
    return ((2 * s12 + c2) / (s1 + s2 + c2)).mean()


def _global_gsm(img: torch.Tensor) -> torch.Tensor:
    """``global_gsm.m`` on the 0..255 luminance: 45 features."""
    n_or = 6
    bands = build_sf_pyramid(img, 2, n_or - 1)
    subbands = _norm_sender_normalized(bands, 2, n_or)
    feats = [_gama_gen_gauss(sb.reshape(-1)) for sb in subbands]
    feats += [
        _gama_gen_gauss(torch.cat([subbands[i].reshape(-1), subbands[i + n_or].reshape(-1)])) for i in range(n_or)
    ]
    hp = bands[0]
    for ii in range(1, len(subbands) + 1):  # raw oriented bands 2..13, resized to the high-pass size
        band = bands[ii]
        if band.shape != hp.shape:
            band = imresize(band.unsqueeze(0), size=tuple(hp.shape)).squeeze(0)
        feats.append(_ssim_cs(band, hp))
    for i in range(n_or):
        for j in range(i + 1, n_or):
            feats.append(_ssim_cs(subbands[i], subbands[j]))
    return torch.stack(feats)


def ma_features(img: torch.Tensor, crop_border: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ma et al.'s three feature vectors ``(f1 (18,), f2 (45,), f3 (75,))`` of one image (``feature_all.m``).

    Args:
        img: float tensor (3, H, W) RGB or (1, H, W) gray in [0, 1]; quantized to uint8, MATLAB Y (rounded),
            a gray image as R = G = B (as ``niqe``).
        crop_border: pixels shaved from every border first (PIRM: 4).
    """
    y = matlab_luminance(img, "y")
    crop_border = int(crop_border)
    if crop_border:
        if crop_border < 0 or 2 * crop_border >= min(y.shape):
            raise ValueError(f"crop_border={crop_border} does not fit a {tuple(y.shape)} image")
        y = y[crop_border:-crop_border, crop_border:-crop_border]
    scales = _ma_pyramid(y / 255.0)  # im2double of the uint8 image
    f1 = torch.cat([_block_dct(s) for s in scales])
    f2 = _global_gsm(y)
    f3 = torch.cat([_svd_features(s) for s in scales])
    return f1.numpy(), f2.numpy(), f3.numpy()
