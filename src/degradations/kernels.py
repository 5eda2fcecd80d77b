"""Blur kernels for the degradation pipelines, generated in a batch on any device.

The formulas and their parameterisation are Real-ESRGAN's (``basicsr/data/degradations.py``):

* the grid of a ``k x k`` kernel (``k`` odd) is ``x, y in -(k-1)/2 .. (k-1)/2``, ``x`` along the columns and
  ``y`` along the rows; ``Q = [x y] Sigma^-1 [x y]^T`` with the rotated covariance
  ``Sigma = R diag(sig_x^2, sig_y^2) R^T``, ``R = [[cos t, -sin t], [sin t, cos t]]`` (isotropic:
  ``Sigma = sig_x^2 I``);
* Gaussian ``exp(-Q / 2)``, generalized Gaussian ``exp(-Q^beta / 2)``, plateau ``1 / (1 + Q^beta)``;
* 2-D sinc (circular low-pass, cutoff ``w`` in radians): ``w J1(w r) / (2 pi r)`` with ``r`` the distance to
  the centre and the centre value ``w^2 / (4 pi)`` (the limit ``r -> 0``);
* every kernel is normalised to sum 1 over its ``k x k`` support; ``pad_to`` zero-pads it (centred);
  entries below ``1e-12`` are then set to 0 (far below float32 resolution of a filtered pixel, and it keeps
  tiny-weight x pixel products from being denormal numbers, which are slow on CPUs).

Batched functions take one parameter value per sample (tensors of shape (B,) or Python numbers) and a per-
sample kernel size; every kernel of the batch is returned centred in a common ``(P, P)`` frame (``P`` =
``pad_to``, default the largest size), zero outside its own support, so that one grouped convolution with
reflect padding ``P // 2`` filters each image with its own kernel exactly as the unpadded kernel would.
Kernels are computed in float64 (float32 on MPS) with denormals flushed to zero (per-sample Gaussian kernels
were measured 17x slower on CPU without it) and returned as float32.

:func:`random_mixed_kernels` and :func:`random_blur_kernels` draw the per-sample parameters from a
``torch.Generator`` (on the CPU; the kernels are then built on ``device``), following Real-ESRGAN's
``random_mixed_kernels`` and its dataset's kernel sampling.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch

__all__ = [
    "KERNEL_TYPES",
    "bivariate_gaussian",
    "bivariate_generalized_gaussian",
    "bivariate_plateau",
    "build_kernels",
    "circular_lowpass_kernel",
    "flush_denormal",
    "gaussian_kernels",
    "generalized_gaussian_kernels",
    "plateau_kernels",
    "pulse_kernels",
    "random_blur_kernels",
    "random_mixed_kernels",
    "random_sinc_kernels",
    "sample_blur_params",
    "sinc_kernels",
]

#: Kernel type names of Real-ESRGAN's ``kernel_list`` (``iso``/``aniso``: Gaussian).
KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")

# family codes used by build_kernels
GAUSSIAN, GENERALIZED, PLATEAU, SINC, PULSE = 0, 1, 2, 3, 4
_FAMILY = {"iso": GAUSSIAN, "aniso": GAUSSIAN, "generalized_iso": GENERALIZED, "generalized_aniso": GENERALIZED,
           "plateau_iso": PLATEAU, "plateau_aniso": PLATEAU}

Number = float | int
ParamLike = torch.Tensor | Number | Sequence[Number]


# ---- helpers ------------------------------------------------------------------------------------------------
def _flush_denormal_active() -> bool:
    """Whether denormals are currently flushed to zero (there is no getter: probe with a denormal float32)."""
    tiny = torch.full((4,), 1e-40, dtype=torch.float32)
    return bool((tiny * 2.0)[0].item() == 0.0)


@contextlib.contextmanager
def flush_denormal() -> Iterator[None]:
    """Flush denormal floats to zero on the CPU inside the block and restore the previous mode after."""
    previous = _flush_denormal_active()
    changed = not previous and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)


def _work_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def _as_batch(value: ParamLike | None, n: int | None, device: torch.device, dtype: torch.dtype) -> torch.Tensor | None:
    if value is None:
        return None
    t = torch.as_tensor(value, dtype=dtype, device=device).reshape(-1)
    if n is not None and t.numel() == 1 and n != 1:
        t = t.expand(n)
    return t


def _batch_size(*values: ParamLike | None) -> int:
    sizes = {torch.as_tensor(v).numel() for v in values if v is not None}
    sizes.discard(1)
    if len(sizes) > 1:
        raise ValueError(f"per-sample kernel parameters have different batch sizes: {sorted(sizes)}")
    return sizes.pop() if sizes else 1


def _sizes(kernel_size: ParamLike, n: int) -> torch.Tensor:
    sizes = torch.as_tensor(kernel_size, dtype=torch.int64).reshape(-1).cpu()
    if sizes.numel() == 1:
        sizes = sizes.expand(n)
    if sizes.numel() != n:
        raise ValueError(f"kernel_size has {sizes.numel()} values for a batch of {n}")
    if bool((sizes % 2 == 0).any()) or bool((sizes < 1).any()):
        raise ValueError(f"kernel sizes must be odd and positive, got {sizes.tolist()}")
    return sizes


def _frame(sizes: torch.Tensor, pad_to: int | None) -> int:
    size = int(sizes.max())
    if pad_to is not None and pad_to > size:
        if pad_to % 2 == 0:
            raise ValueError(f"pad_to must be odd, got {pad_to}")
        size = int(pad_to)
    return size


def _grid(size: int, sizes: torch.Tensor, device: torch.device, dtype: torch.dtype):
    """Column offsets x (1, P, P), row offsets y (1, P, P) and the per-sample support mask (B, P, P)."""
    half = size // 2
    ax = torch.arange(-half, half + 1, device=device, dtype=dtype)
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")  # yy varies along rows, xx along columns
    radius = (sizes.to(device=device, dtype=dtype) - 1) / 2
    inside = (xx.abs().unsqueeze(0) <= radius.view(-1, 1, 1)) & (yy.abs().unsqueeze(0) <= radius.view(-1, 1, 1))
    return xx.unsqueeze(0), yy.unsqueeze(0), inside


def _quadratic_form(xx, yy, sig_x, sig_y, theta) -> torch.Tensor:
    """Q = [x y] Sigma^-1 [x y]^T per sample, Sigma = R diag(sig_x^2, sig_y^2) R^T (Real-ESRGAN's
    ``sigma_matrix2`` and ``pdf2``: the inverse is taken of the assembled matrix)."""
    c, s = torch.cos(theta), torch.sin(theta)
    a, d = sig_x**2, sig_y**2
    s00 = c * c * a + s * s * d  # R D R^T, assembled as (R (D R^T))
    s01 = c * s * a - s * c * d
    s10 = s * c * a - c * s * d
    s11 = s * s * a + c * c * d
    det = s00 * s11 - s01 * s10
    i00, i01, i10, i11 = s11 / det, -s01 / det, -s10 / det, s00 / det
    v = lambda t: t.view(-1, 1, 1)  # noqa: E731
    # np.sum(np.dot(grid, inv) * grid, 2) with grid[..., 0] = x, grid[..., 1] = y
    return (xx * v(i00) + yy * v(i10)) * xx + (xx * v(i01) + yy * v(i11)) * yy


def _normalise(kernel: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    kernel = torch.where(inside, kernel, torch.zeros((), dtype=kernel.dtype, device=kernel.device))
    return kernel / kernel.sum(dim=(-2, -1), keepdim=True)


#: kernel entries below this (the kernels sum to 1) are set to 0: their contribution is below float32 resolution,
#: and products of such tiny weights with pixel values would be denormal numbers, which are slow on CPUs
NEGLIGIBLE = 1e-12


def _finish(kernel: torch.Tensor) -> torch.Tensor:
    return torch.where(kernel.abs() < NEGLIGIBLE, torch.zeros((), dtype=kernel.dtype, device=kernel.device),
                       kernel).float()


def _gaussian_family(
    family: int, kernel_size, sig_x, sig_y, theta, beta, isotropic, pad_to, device
) -> torch.Tensor:
    device = torch.device(device) if device is not None else torch.device("cpu")
    dtype = _work_dtype(device)
    n = _batch_size(sig_x, sig_y, theta, beta)
    sizes = _sizes(kernel_size, n)
    n = max(n, sizes.numel())
    sig_x = _as_batch(sig_x, n, device, dtype)
    if isotropic:
        sig_y, theta = sig_x, torch.zeros_like(sig_x)
    else:
        sig_y, theta = _as_batch(sig_y, n, device, dtype), _as_batch(theta, n, device, dtype)
    with flush_denormal():
        xx, yy, inside = _grid(_frame(sizes, pad_to), sizes, device, dtype)
        q = _quadratic_form(xx, yy, sig_x, sig_y, theta)
        if family == GAUSSIAN:
            kernel = torch.exp(-0.5 * q)
        else:
            qb = q.pow(_as_batch(beta, n, device, dtype).view(-1, 1, 1))
            kernel = torch.exp(-0.5 * qb) if family == GENERALIZED else torch.reciprocal(qb + 1)
        return _finish(_normalise(kernel, inside))


# ---- batched kernels ---------------------------------------------------------------------------------------
def gaussian_kernels(
    kernel_size: ParamLike,
    sig_x: ParamLike,
    sig_y: ParamLike | None = None,
    theta: ParamLike | None = None,
    *,
    isotropic: bool = False,
    pad_to: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Bivariate Gaussian kernels, one per sample: (B, P, P) float32 (see the module docstring)."""
    return _gaussian_family(GAUSSIAN, kernel_size, sig_x, sig_y, theta, None, isotropic, pad_to, device)


def generalized_gaussian_kernels(
    kernel_size: ParamLike,
    sig_x: ParamLike,
    sig_y: ParamLike | None,
    theta: ParamLike | None,
    beta: ParamLike,
    *,
    isotropic: bool = False,
    pad_to: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Bivariate generalized Gaussian kernels ``exp(-Q^beta / 2)``: (B, P, P) float32."""
    return _gaussian_family(GENERALIZED, kernel_size, sig_x, sig_y, theta, beta, isotropic, pad_to, device)


def plateau_kernels(
    kernel_size: ParamLike,
    sig_x: ParamLike,
    sig_y: ParamLike | None,
    theta: ParamLike | None,
    beta: ParamLike,
    *,
    isotropic: bool = False,
    pad_to: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Bivariate plateau kernels ``1 / (1 + Q^beta)``: (B, P, P) float32."""
    return _gaussian_family(PLATEAU, kernel_size, sig_x, sig_y, theta, beta, isotropic, pad_to, device)


def _sinc_values(xx, yy, cutoff) -> torch.Tensor:
    """``w J1(w r) / (2 pi r)`` with the centre set to ``w^2 / (4 pi)`` as the reference does."""
    r = torch.sqrt(xx**2 + yy**2)
    w = cutoff.view(-1, 1, 1)
    centre = r == 0
    r_safe = torch.where(centre, torch.ones_like(r), r)
    values = w * torch.special.bessel_j1(w * r_safe) / (2 * math.pi * r_safe)
    return torch.where(centre, w**2 / (4 * math.pi), values)


def sinc_kernels(
    kernel_size: ParamLike,
    cutoff: ParamLike,
    *,
    pad_to: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """2-D sinc (circular low-pass) kernels with per-sample cutoff (radians): (B, P, P) float32."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    dtype = _work_dtype(device)
    n = _batch_size(cutoff)
    sizes = _sizes(kernel_size, n)
    n = max(n, sizes.numel())
    cutoff = _as_batch(cutoff, n, device, dtype)
    with flush_denormal():
        xx, yy, inside = _grid(_frame(sizes, pad_to), sizes, device, dtype)
        return _finish(_normalise(_sinc_values(xx, yy, cutoff), inside))


def pulse_kernels(n: int, size: int = 21, device: torch.device | str | None = None) -> torch.Tensor:
    """Identity (delta) kernels: (n, size, size) float32 with a single 1 at the centre."""
    kernel = torch.zeros(n, size, size, device=device)
    kernel[:, size // 2, size // 2] = 1.0
    return kernel


def build_kernels(
    family: torch.Tensor,
    kernel_size: torch.Tensor,
    sig_x: torch.Tensor,
    sig_y: torch.Tensor,
    theta: torch.Tensor,
    beta: torch.Tensor,
    cutoff: torch.Tensor,
    *,
    pad_to: int = 21,
    noise: torch.Tensor | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Kernels of mixed families in one batch: (B, P, P) float32.

    Args:
        family: (B,) int codes: 0 Gaussian, 1 generalized Gaussian, 2 plateau, 3 sinc, 4 pulse (identity).
        kernel_size: (B,) odd sizes; sig_x, sig_y, theta, beta, cutoff: (B,) parameters (unused ones ignored;
            isotropic kernels have ``sig_y = sig_x`` and ``theta = 0``, which gives Real-ESRGAN's ``sig_x^2 I``).
        pad_to: the common frame size ``P``.
        noise: optional (B, P, P) multiplicative kernel noise (Real-ESRGAN's ``noise_range``), applied before a
            second normalisation to the Gaussian and generalized Gaussian samples only.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    dtype = _work_dtype(device)
    n = int(family.numel())
    sizes = _sizes(kernel_size, n)
    size = _frame(sizes, pad_to)
    fam = family.to(device).view(-1, 1, 1)
    p = {k: v.to(device=device, dtype=dtype).reshape(-1) for k, v in
         {"sx": sig_x, "sy": sig_y, "t": theta, "b": beta, "w": cutoff}.items()}
    with flush_denormal():
        xx, yy, inside = _grid(size, sizes, device, dtype)
        q = _quadratic_form(xx, yy, p["sx"], p["sy"], p["t"])
        qb = q.pow(p["b"].view(-1, 1, 1))
        kernel = torch.exp(-0.5 * q)
        kernel = torch.where(fam == GENERALIZED, torch.exp(-0.5 * qb), kernel)
        kernel = torch.where(fam == PLATEAU, torch.reciprocal(qb + 1), kernel)
        if bool((family == SINC).any()):
            kernel = torch.where(fam == SINC, _sinc_values(xx, yy, p["w"]), kernel)
        centre = (xx == 0) & (yy == 0)
        kernel = torch.where(fam == PULSE, centre.to(dtype), kernel)
        kernel = _normalise(kernel, inside)
        if noise is not None:
            noisy = (fam == GAUSSIAN) | (fam == GENERALIZED)
            kernel = torch.where(noisy, _normalise(kernel * noise.to(device=device, dtype=dtype), inside), kernel)
        return _finish(kernel)


# ---- single kernels with the reference's names and argument order ------------------------------------------
def bivariate_gaussian(kernel_size: int, sig_x: float, sig_y: float, theta: float, isotropic: bool = True):
    """Real-ESRGAN's ``bivariate_Gaussian``: a (k, k) float32 tensor (isotropic: ``sig_y``/``theta`` unused)."""
    return gaussian_kernels(kernel_size, sig_x, sig_y, theta, isotropic=isotropic)[0]


def bivariate_generalized_gaussian(
    kernel_size: int, sig_x: float, sig_y: float, theta: float, beta: float, isotropic: bool = True
) -> torch.Tensor:
    """Real-ESRGAN's ``bivariate_generalized_Gaussian``: a (k, k) float32 tensor."""
    return generalized_gaussian_kernels(kernel_size, sig_x, sig_y, theta, beta, isotropic=isotropic)[0]


def bivariate_plateau(
    kernel_size: int, sig_x: float, sig_y: float, theta: float, beta: float, isotropic: bool = True
) -> torch.Tensor:
    """Real-ESRGAN's ``bivariate_plateau``: a (k, k) float32 tensor."""
    return plateau_kernels(kernel_size, sig_x, sig_y, theta, beta, isotropic=isotropic)[0]


def circular_lowpass_kernel(cutoff: float, kernel_size: int, pad_to: int = 0) -> torch.Tensor:
    """Real-ESRGAN's ``circular_lowpass_kernel``: (k, k) float32, or (pad_to, pad_to) when ``pad_to > k``."""
    if kernel_size % 2 != 1:
        raise ValueError("kernel_size must be odd")
    return sinc_kernels(kernel_size, cutoff, pad_to=int(pad_to) if pad_to and pad_to > kernel_size else None)[0]


# ---- random sampling -------------------------------------------------------------------------------------------
def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, generator=generator, dtype=torch.float64) * (high - low) + low


def _choice(n: int, probs: Sequence[float], generator: torch.Generator | None) -> torch.Tensor:
    """(n,) int64 indices drawn with the (unnormalised) probabilities ``probs``, via inverse CDF."""
    p = torch.as_tensor(list(probs), dtype=torch.float64)
    if p.numel() == 0 or bool((p < 0).any()) or float(p.sum()) <= 0:
        raise ValueError(f"probabilities must be non-negative with a positive sum, got {list(probs)}")
    cdf = torch.cumsum(p / p.sum(), 0)
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return torch.searchsorted(cdf, u, right=True).clamp_(max=p.numel() - 1)


def _beta(n: int, beta_range: Sequence[float], generator: torch.Generator | None) -> torch.Tensor:
    """Real-ESRGAN's beta draw: with probability 1/2 uniform in [beta_min, 1], else in [1, beta_max]."""
    low_half = torch.rand(n, generator=generator, dtype=torch.float64) < 0.5
    below = _uniform(n, beta_range[0], 1.0, generator)
    above = _uniform(n, 1.0, beta_range[1], generator)
    return torch.where(low_half, below, above)


def _sample_mixed(
    n: int,
    kernel_list: Sequence[str],
    kernel_prob: Sequence[float],
    sigma_x_range: Sequence[float],
    sigma_y_range: Sequence[float],
    rotation_range: Sequence[float],
    betag_range: Sequence[float],
    betap_range: Sequence[float],
    generator: torch.Generator | None,
) -> dict[str, torch.Tensor]:
    unknown = [k for k in kernel_list if k not in _FAMILY]
    if unknown:
        raise ValueError(f"unknown kernel types {unknown}; choose from {list(KERNEL_TYPES)}")
    if len(kernel_list) != len(kernel_prob):
        raise ValueError(f"kernel_list has {len(kernel_list)} types but kernel_prob {len(kernel_prob)} values")
    pick = _choice(n, kernel_prob, generator)
    names = [kernel_list[i] for i in pick.tolist()]
    family = torch.tensor([_FAMILY[name] for name in names], dtype=torch.int64)
    isotropic = torch.tensor([name.endswith("iso") and not name.endswith("aniso") for name in names])
    sig_x = _uniform(n, sigma_x_range[0], sigma_x_range[1], generator)
    sig_y = torch.where(isotropic, sig_x, _uniform(n, sigma_y_range[0], sigma_y_range[1], generator))
    theta = torch.where(isotropic, torch.zeros(n, dtype=torch.float64),
                        _uniform(n, rotation_range[0], rotation_range[1], generator))
    beta = torch.where(family == PLATEAU, _beta(n, betap_range, generator), _beta(n, betag_range, generator))
    beta = torch.where(family == GAUSSIAN, torch.ones(n, dtype=torch.float64), beta)
    return {"family": family, "sig_x": sig_x, "sig_y": sig_y, "theta": theta, "beta": beta}


def random_mixed_kernels(
    n: int,
    kernel_list: Sequence[str],
    kernel_prob: Sequence[float],
    kernel_size: int | Sequence[int] = 21,
    sigma_x_range: Sequence[float] = (0.6, 5),
    sigma_y_range: Sequence[float] = (0.6, 5),
    rotation_range: Sequence[float] = (-math.pi, math.pi),
    betag_range: Sequence[float] = (0.5, 8),
    betap_range: Sequence[float] = (0.5, 8),
    noise_range: Sequence[float] | None = None,
    *,
    generator: torch.Generator | None = None,
    pad_to: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``n`` random kernels as Real-ESRGAN's ``random_mixed_kernels`` draws them, batched: (n, P, P) float32.

    Per sample: a type from ``kernel_list`` with probabilities ``kernel_prob``; ``sig_x`` uniform in
    ``sigma_x_range``; anisotropic types also ``sig_y`` in ``sigma_y_range`` and a rotation in
    ``rotation_range`` (isotropic: ``sig_y = sig_x``, no rotation); ``beta`` with probability 1/2 uniform in
    ``[beta_min, 1]``, else in ``[1, beta_max]`` (``betag_range`` for generalized, ``betap_range`` for plateau
    kernels); optional multiplicative noise (not for plateau kernels, as in the reference). ``kernel_size`` is
    one odd size or a list to draw a size per sample from. All draws come from ``generator`` (CPU).
    """
    sizes = _draw_sizes(n, kernel_size, generator)
    params = _sample_mixed(n, kernel_list, kernel_prob, sigma_x_range, sigma_y_range, rotation_range,
                           betag_range, betap_range, generator)
    size = _frame(sizes, pad_to)
    noise = None
    if noise_range is not None:
        noise = _uniform(n * size * size, noise_range[0], noise_range[1], generator).view(n, size, size)
    zeros = torch.zeros(n, dtype=torch.float64)
    return build_kernels(params["family"], sizes, params["sig_x"], params["sig_y"], params["theta"],
                         params["beta"], zeros, pad_to=size, noise=noise, device=device)


def _draw_sizes(n: int, kernel_size: int | Sequence[int], generator: torch.Generator | None) -> torch.Tensor:
    choices = torch.as_tensor([kernel_size] if isinstance(kernel_size, int) else list(kernel_size), dtype=torch.int64)
    if choices.numel() == 1:
        return choices.expand(n).clone()
    return choices[torch.randint(len(choices), (n,), generator=generator)]


def sample_blur_params(
    n: int,
    *,
    kernel_sizes: Sequence[int] = (7, 9, 11, 13, 15, 17, 19, 21),
    kernel_list: Sequence[str] = KERNEL_TYPES,
    kernel_prob: Sequence[float] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
    sigma_range: Sequence[float] = (0.2, 3.0),
    rotation_range: Sequence[float] = (-math.pi, math.pi),
    betag_range: Sequence[float] = (0.5, 4.0),
    betap_range: Sequence[float] = (1.0, 2.0),
    sinc_prob: float = 0.1,
    blur_prob: float = 1.0,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Per-sample parameters of one Real-ESRGAN blur round (CPU tensors; the arguments of :func:`build_kernels`).

    Per sample (as ``RealESRGANDataset.__getitem__``): a size from ``kernel_sizes``; with probability
    ``sinc_prob`` a sinc kernel with cutoff uniform in [pi/3, pi] (size < 13) or [pi/5, pi] (size >= 13), else a
    mixed kernel (as :func:`random_mixed_kernels`, ``sig_x`` and ``sig_y`` both from ``sigma_range``); with
    probability ``1 - blur_prob`` the identity (Real-ESRGAN's ``second_blur_prob``, here a per-sample draw).
    """
    sizes = _draw_sizes(n, list(kernel_sizes), generator)
    use_sinc = torch.rand(n, generator=generator, dtype=torch.float64) < sinc_prob
    cutoff = torch.where(sizes < 13, _uniform(n, math.pi / 3, math.pi, generator),
                         _uniform(n, math.pi / 5, math.pi, generator))
    params = _sample_mixed(n, kernel_list, kernel_prob, sigma_range, sigma_range, rotation_range, betag_range,
                           betap_range, generator)
    blur = torch.rand(n, generator=generator, dtype=torch.float64) < blur_prob
    family = torch.where(use_sinc, torch.full_like(params["family"], SINC), params["family"])
    family = torch.where(blur, family, torch.full_like(family, PULSE))
    return {"family": family, "kernel_size": sizes, "sig_x": params["sig_x"], "sig_y": params["sig_y"],
            "theta": params["theta"], "beta": params["beta"], "cutoff": cutoff}


def random_blur_kernels(
    n: int,
    *,
    pad_to: int = 21,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    **sampling,
) -> torch.Tensor:
    """The blur kernels of one Real-ESRGAN degradation round, batched: (n, P, P) float32.

    ``sampling``: the keyword arguments of :func:`sample_blur_params` (sizes, types, ranges, ``sinc_prob``,
    ``blur_prob``); the parameters are drawn from ``generator`` on the CPU, the kernels built on ``device``.
    """
    params = sample_blur_params(n, generator=generator, **sampling)
    return build_kernels(**params, pad_to=pad_to, device=device)


def random_sinc_kernels(
    n: int,
    *,
    prob: float = 0.8,
    kernel_sizes: Sequence[int] = (7, 9, 11, 13, 15, 17, 19, 21),
    cutoff_range: Sequence[float] = (math.pi / 3, math.pi),
    pad_to: int = 21,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Real-ESRGAN's final sinc filter, batched: with probability ``prob`` a sinc kernel (size from
    ``kernel_sizes``, cutoff uniform in ``cutoff_range``), else the identity; (n, P, P) float32."""
    apply = torch.rand(n, generator=generator, dtype=torch.float64) < prob
    sizes = _draw_sizes(n, list(kernel_sizes), generator)
    cutoff = _uniform(n, cutoff_range[0], cutoff_range[1], generator)
    family = torch.where(apply, torch.full((n,), SINC), torch.full((n,), PULSE))
    ones = torch.ones(n, dtype=torch.float64)
    return build_kernels(family, sizes, ones, ones, ones * 0, ones, cutoff, pad_to=pad_to, device=device)
