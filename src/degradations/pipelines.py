"""Degradation pipelines: HR batch -> LR batch, run on the batch's device in fp32 outside autocast.

Every pipeline is a :class:`src.degradations.base.Degradation`: ``deg(batch: SRBatch) -> SRBatch`` fills in
``batch.lr`` (Real-ESRGAN also ``hr_usm``, and may crop or swap the HR of training batches).

Seeding: all random draws of :class:`ClassicalDegradation` and :class:`RealESRGANDegradation` come from
``torch.Generator`` objects seeded from the constructor's ``seed``. Per-sample parameters, blur kernels (built
in float64 on the CPU), Gaussian noise fields and the pool shuffle come from a CPU generator and are moved to the
batch's device, so they are the same numbers on the CPU and on a GPU; only Poisson fields (which depend on the
image) are drawn by a generator on the batch's device, so Poisson-noised samples differ between device types
(same parameters, same distribution). Training generators are created at the first training batch, seeded from
``(seed, rank)`` (the DDP rank, so that ranks draw different degradations) and then advance from batch to batch:
the same seed gives the same sequence of LR batches. ``batch.training=False`` (validation) re-creates
fresh generators on every call, seeded from ``seed`` and a fingerprint of the input: the same input always gives
the same output, different validation images get different degradations, and the training stream is not
disturbed.

Resuming: ``state_dict()`` holds the training generators' states and the training-pair pool; a checkpoint
stores it (see :class:`src.data.datamodules.SRDataModule`) so that a resumed run draws what the uninterrupted
run would have drawn.

GPUs: a training batch makes no host-device synchronisation (every control decision -- kernel supports, which
samples get noise or JPEG -- is taken on CPU values; host-to-device copies are non-blocking), and convolutions
and matmuls run in IEEE fp32 (TF32 off, :func:`src.degradations.numerics.exact_fp32`). Validation calls
synchronise once (the content fingerprint).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from src.data.batch import SRBatch
from src.degradations.base import Degradation
from src.degradations.filtering import filter2d
from src.degradations.jpeg import jpeg
from src.degradations.kernels import KERNEL_TYPES, random_blur_kernels, random_sinc_kernels
from src.degradations.noise import clip_round, gaussian_noise, poisson_noise
from src.degradations.numerics import autocast_off, exact_fp32, to_device
from src.degradations.resize import imresize
from src.degradations.sharpen import usm_sharp

log = logging.getLogger(__name__)

__all__ = ["BicubicDegradation", "ClassicalDegradation", "RealESRGANDegradation", "TrainingPairPool"]

RESIZE_MODES = ("area", "bilinear", "bicubic", "matlab_bicubic", "nearest")
KERNEL_SIZES = (7, 9, 11, 13, 15, 17, 19, 21)


class BicubicDegradation(Degradation):
    """The bicubic protocol of SR papers: MATLAB ``imresize(HR, 1/scale)`` (antialiased cubic kernel).

    Args:
        scale: integer downscaling factor; HR height and width must be multiples of it.
        antialiasing: MATLAB's default ``True``; ``False`` samples the plain cubic kernel.
        quantize: round the LR batch to 8-bit levels (as the published LR PNG files are), default ``True``.

    Call: ``batch.hr`` (N, C, H, W) -> the batch with ``lr`` float32 (N, C, H/s, W/s) in [0, 1], ``s`` =
    ``batch.scale`` or ``scale`` (multi-scale training).
    """

    def __init__(self, scale: int, antialiasing: bool = True, quantize: bool = True) -> None:
        if int(scale) != scale or scale < 1:
            raise ValueError(f"degradation.scale must be a positive integer, got {scale!r}")
        self.scale = int(scale)
        self.antialiasing = antialiasing
        self.quantize = quantize

    def __call__(self, batch: SRBatch) -> SRBatch:
        batch = batch.to_float()
        hr = batch.hr
        scale = self.scale if batch.scale is None else int(batch.scale)
        h, w = hr.shape[-2:]
        if h % scale or w % scale:
            raise ValueError(f"HR size {h}x{w} is not a multiple of the scale {scale}: modcrop the image first")
        with autocast_off(hr.device), exact_fp32():
            lr = imresize(hr.float(), 1.0 / scale, antialiasing=self.antialiasing)
        if self.quantize:
            lr = (lr.clamp(0, 1) * 255.0).round() / 255.0
        return batch.replace(lr=lr)

    def __repr__(self) -> str:
        return f"BicubicDegradation(scale={self.scale}, antialiasing={self.antialiasing}, quantize={self.quantize})"


# ---- shared machinery ----------------------------------------------------------------------------------------
def _derive_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1, dtype=np.uint64)[0])


def _rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return int(torch.distributed.get_rank())
    return 0


class _Rng:
    """A CPU generator for parameters, kernels, Gaussian fields and the pool shuffle, and one on the batch's
    device for Poisson fields (a CPU one for ``meta`` tensors: shape-only dry runs)."""

    def __init__(self, seed: int, device: torch.device) -> None:
        self.cpu = torch.Generator().manual_seed(_derive_seed(seed, 0))
        self.device = device
        if device.type in ("cpu", "meta"):
            self.dev = torch.Generator().manual_seed(_derive_seed(seed, 1))
        else:
            self.dev = torch.Generator(device=device).manual_seed(_derive_seed(seed, 1))

    def state_dict(self) -> dict:
        return {"cpu": self.cpu.get_state(), "dev": self.dev.get_state(), "device_type": self.device.type}

    def load_state_dict(self, state: dict) -> None:
        self.cpu.set_state(state["cpu"])
        if state["device_type"] == self.device.type:
            self.dev.set_state(state["dev"])
        else:  # a CUDA generator's state means nothing to a CPU one (and back): only Poisson fields change
            log.warning("degradation: the checkpoint's Poisson-noise generator was on %s, this run is on %s; "
                        "it is re-seeded", state["device_type"], self.device.type)

    def uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=self.cpu, dtype=torch.float64) * (high - low) + low

    def rand(self) -> float:
        return float(torch.rand((), generator=self.cpu, dtype=torch.float64))

    def choice(self, probs: Sequence[float]) -> int:
        p = torch.as_tensor(list(probs), dtype=torch.float64)
        return int(torch.multinomial(p / p.sum(), 1, generator=self.cpu))


def _check_range(name: str, rng: Sequence[float], low: float | None = None, high: float | None = None) -> tuple:
    if len(rng) != 2 or not rng[0] <= rng[1]:
        raise ValueError(f"degradation.{name} must be [min, max] with min <= max, got {list(rng)}")
    if (low is not None and rng[0] < low) or (high is not None and rng[1] > high):
        raise ValueError(f"degradation.{name}={list(rng)} must lie within [{low}, {high}]")
    return float(rng[0]), float(rng[1])


def _check_prob(name: str, p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"degradation.{name} must be a probability in [0, 1], got {p}")
    return float(p)


def _check_probs(name: str, probs: Sequence[float], n: int) -> list[float]:
    probs = [float(p) for p in probs]
    if len(probs) != n or any(p < 0 for p in probs) or sum(probs) <= 0:
        raise ValueError(f"degradation.{name} must be {n} non-negative weights with a positive sum, got {probs}")
    return probs


def _check_kernels(name: str, kernel_list: Sequence[str], kernel_prob: Sequence[float]) -> tuple[list, list]:
    unknown = [k for k in kernel_list if k not in KERNEL_TYPES]
    if unknown or not kernel_list:
        raise ValueError(f"degradation.{name}: unknown kernel types {unknown}; choose from {list(KERNEL_TYPES)}")
    return list(kernel_list), _check_probs(name.replace("list", "prob"), kernel_prob, len(kernel_list))


def _check_modes(name: str, modes: Sequence[str]) -> list[str]:
    bad = [m for m in modes if m not in RESIZE_MODES]
    if bad or not modes:
        raise ValueError(f"degradation.{name}: unknown resize modes {bad}; choose from {list(RESIZE_MODES)}")
    return list(modes)


def _check_sizes(sizes: Sequence[int]) -> list[int]:
    sizes = [int(s) for s in sizes]
    if not sizes or any(s % 2 == 0 or s < 1 or s > 21 for s in sizes):
        raise ValueError(f"degradation.kernel_sizes must be odd sizes in 1..21, got {sizes}")
    return sizes


def _resize(x: torch.Tensor, mode: str, size: tuple[int, int] | None = None, factor: float | None = None):
    """Resize a batch with ``mode``; ``factor`` (as ``F.interpolate(scale_factor=…)``) or ``size``."""
    h, w = x.shape[-2:]
    if factor is not None:
        if factor == 1.0:
            return x
        size_f = (math.floor(h * factor), math.floor(w * factor))
        if min(size_f) >= 1 and mode != "matlab_bicubic":
            return F.interpolate(x, scale_factor=factor, mode=mode)
        size = (max(1, size_f[0]), max(1, size_f[1]))
    size = (max(1, int(size[0])), max(1, int(size[1])))
    if size == (h, w):
        return x
    if mode == "matlab_bicubic":
        return imresize(x, size=size)
    return F.interpolate(x, size=size, mode=mode)


def _add_noise(
    x: torch.Tensor,
    rng: _Rng,
    use_gaussian: torch.Tensor,
    use_poisson: torch.Tensor,
    sigma_range: tuple[float, float],
    poisson_range: tuple[float, float],
    gray_prob: float,
) -> torch.Tensor:
    """Per-sample Gaussian / Poisson noise (boolean masks (B,)), then clip to [0, 1] (no rounding)."""
    b = x.shape[0]
    sigma = rng.uniform(b, *sigma_range)
    scale = rng.uniform(b, *poisson_range)
    gray = torch.rand(b, generator=rng.cpu, dtype=torch.float64) < gray_prob
    noise = torch.zeros_like(x)
    if bool(use_gaussian.any()):  # CPU masks: no synchronisation
        s = torch.where(use_gaussian, sigma, torch.zeros_like(sigma))
        noise = noise + gaussian_noise(x, s, gray, rng.cpu)
    if bool(use_poisson.any()):
        s = torch.where(use_poisson, scale, torch.zeros_like(scale))
        noise = noise + poisson_noise(x, s, gray, rng.dev)
    return clip_round(x + noise, clip=True, rounds=False)


def _jpeg_subset(x: torch.Tensor, rng: _Rng, quality_range: tuple[float, float], apply: torch.Tensor | None = None):
    """JPEG with per-sample quality uniform in ``quality_range`` (clamped input), on the samples in ``apply``."""
    b = x.shape[0]
    quality = rng.uniform(b, *quality_range)
    x = torch.clamp(x, 0, 1)
    if apply is None or bool(apply.all()):  # CPU mask and qualities: no synchronisation
        return jpeg(x, quality)
    if not bool(apply.any()):
        return x
    idx = torch.nonzero(apply).view(-1)
    idx_dev = to_device(idx, x.device)
    out = x.clone()
    out[idx_dev] = jpeg(x[idx_dev], quality[idx])
    return out


class _RandomDegradation(Degradation):
    """Seeding, fp32/no-autocast/no-grad wrapping and the ``deg(batch)`` interface."""

    def __init__(self, scale: int, seed: int) -> None:
        if int(scale) != scale or scale < 1:
            raise ValueError(f"degradation.scale must be a positive integer, got {scale!r}")
        self.scale = int(scale)
        self.seed = int(seed)
        self._train_rng: _Rng | None = None
        self._pending_rng: dict | None = None  # generator states from a checkpoint, applied at the next batch

    def __getstate__(self) -> dict:  # generators and pool tensors are not sent to spawned processes
        state = self.__dict__.copy()
        state["_train_rng"] = state["_pending_rng"] = None
        if "pool" in state and state["pool"] is not None:
            state["pool"] = TrainingPairPool(state["pool"].size)
        return state

    def _rng(self, training: bool, device: torch.device, hr: torch.Tensor | None = None) -> _Rng:
        if not training:
            # deterministic per input, and different across validation images: seed from an exact integer
            # fingerprint of the (8-bit) content, identical on every device
            fingerprint = 0
            if hr is not None:
                fingerprint = int((hr[..., ::7, ::7] * 255).round().to(torch.int64).sum()) + hr.numel()
            return _Rng(_derive_seed(self.seed, 0x5EED, fingerprint & 0xFFFFFFFF, fingerprint >> 32), device)
        if self._train_rng is None or self._train_rng.device != device:
            self._train_rng = _Rng(_derive_seed(self.seed, _rank()), device)
            if self._pending_rng is not None:
                self._train_rng.load_state_dict(self._pending_rng)
                self._pending_rng = None
        return self._train_rng

    def __call__(self, batch: SRBatch) -> SRBatch:
        """``batch.hr`` (B, C, H, W) -> the batch with ``lr`` and ``hr`` (and pipeline extras) of the pipeline.

        ``batch.training`` draws from the advancing training generators (and may use a pair pool); a validation
        batch is deterministic per call. ``batch.scale`` overrides the configured factor.
        """
        batch = batch.to_float()
        hr, training = batch.hr.float(), batch.training
        scale = self.scale if batch.scale is None else int(batch.scale)
        rng = self._rng(training, hr.device, hr)
        with torch.no_grad(), autocast_off(hr.device), exact_fp32():
            return batch.replace(**{"hr_usm": None, **self._degrade(hr.contiguous(), scale, rng, training)})

    # ---- resuming ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The training stream's state: generator states (``None`` before the first training batch) and, for
        pipelines with one, the training-pair pool (CPU tensors)."""
        rng = self._train_rng.state_dict() if self._train_rng is not None else self._pending_rng
        pool = getattr(self, "pool", None)
        return {"seed": self.seed, "rng": rng, "pool": pool.state_dict() if pool is not None else None}

    def load_state_dict(self, state: dict) -> None:
        """Continue the training stream of ``state`` (generators are re-created on the first training batch, on
        that batch's device, then set to the saved states)."""
        if int(state["seed"]) != self.seed:
            log.warning("degradation: the checkpoint's seed %s differs from degradation.seed=%s; continuing the "
                        "checkpoint's stream", state["seed"], self.seed)
        self._train_rng, self._pending_rng = None, state["rng"]
        pool = getattr(self, "pool", None)
        if pool is not None and state.get("pool") is not None:
            pool.load_state_dict(state["pool"])

    def _degrade(self, hr: torch.Tensor, scale: int, rng: _Rng, training: bool) -> dict:
        raise NotImplementedError


# ---- classical ---------------------------------------------------------------------------------------------------
class ClassicalDegradation(_RandomDegradation):
    """The classical model ``y = JPEG((x * k)↓s + n)``: blur -> downsample -> noise -> JPEG, per-sample draws.

    Args:
        scale: downscaling factor (LR is ``H // scale`` x ``W // scale``).
        seed: seeds the generators (see the module docstring).
        blur_prob: probability that a sample is blurred (else identity kernel).
        kernel_list / kernel_prob: kernel types (``iso aniso generalized_iso generalized_aniso plateau_iso
            plateau_aniso``) and their weights.
        kernel_sizes: odd kernel sizes drawn per sample (7-21).
        blur_sigma: [min, max] of sigma_x and sigma_y; betag_range / betap_range: shape ranges.
        sinc_prob: probability of a sinc (ringing) kernel instead of the mixed kernel.
        resize_modes / resize_prob: downsampling kernels (``matlab_bicubic area bilinear bicubic nearest``),
            one per batch, with weights (``null``: uniform).
        noise_prob: probability that a sample gets noise; gaussian_noise_prob: Gaussian (else Poisson) given
            noise; noise_range: Gaussian sigma range (0-255 scale); poisson_scale_range; gray_noise_prob.
        jpeg_prob / jpeg_range: probability of JPEG per sample and the quality range.
        quantize: round the LR to 8-bit levels at the end.
    """

    def __init__(
        self,
        scale: int,
        seed: int = 0,
        blur_prob: float = 1.0,
        kernel_list: Sequence[str] = ("iso", "aniso"),
        kernel_prob: Sequence[float] = (0.5, 0.5),
        kernel_sizes: Sequence[int] = KERNEL_SIZES,
        blur_sigma: Sequence[float] = (0.2, 3.0),
        betag_range: Sequence[float] = (0.5, 4.0),
        betap_range: Sequence[float] = (1.0, 2.0),
        sinc_prob: float = 0.0,
        resize_modes: Sequence[str] = ("matlab_bicubic", "area", "bilinear", "bicubic"),
        resize_prob: Sequence[float] | None = None,
        noise_prob: float = 1.0,
        gaussian_noise_prob: float = 0.5,
        noise_range: Sequence[float] = (1.0, 25.0),
        poisson_scale_range: Sequence[float] = (0.05, 2.5),
        gray_noise_prob: float = 0.4,
        jpeg_prob: float = 1.0,
        jpeg_range: Sequence[float] = (30.0, 95.0),
        quantize: bool = True,
    ) -> None:
        super().__init__(scale, seed)
        self.blur_prob = _check_prob("blur_prob", blur_prob)
        self.kernel_list, self.kernel_prob = _check_kernels("kernel_list", kernel_list, kernel_prob)
        self.kernel_sizes = _check_sizes(kernel_sizes)
        self.blur_sigma = _check_range("blur_sigma", blur_sigma, 1e-3)
        self.betag_range = _check_range("betag_range", betag_range, 1e-3)
        self.betap_range = _check_range("betap_range", betap_range, 1e-3)
        self.sinc_prob = _check_prob("sinc_prob", sinc_prob)
        self.resize_modes = _check_modes("resize_modes", resize_modes)
        self.resize_prob = _check_probs("resize_prob", resize_prob or [1.0] * len(self.resize_modes),
                                        len(self.resize_modes))
        self.noise_prob = _check_prob("noise_prob", noise_prob)
        self.gaussian_noise_prob = _check_prob("gaussian_noise_prob", gaussian_noise_prob)
        self.noise_range = _check_range("noise_range", noise_range, 0.0)
        self.poisson_scale_range = _check_range("poisson_scale_range", poisson_scale_range, 0.0)
        self.gray_noise_prob = _check_prob("gray_noise_prob", gray_noise_prob)
        self.jpeg_prob = _check_prob("jpeg_prob", jpeg_prob)
        self.jpeg_range = _check_range("jpeg_range", jpeg_range, 1.0, 100.0)
        self.quantize = quantize

    def _degrade(self, hr: torch.Tensor, scale: int, rng: _Rng, training: bool) -> dict:
        b, _, h, w = hr.shape
        kernels = random_blur_kernels(
            b, kernel_sizes=self.kernel_sizes, kernel_list=self.kernel_list, kernel_prob=self.kernel_prob,
            sigma_range=self.blur_sigma, betag_range=self.betag_range, betap_range=self.betap_range,
            sinc_prob=self.sinc_prob, blur_prob=self.blur_prob, pad_to=max(self.kernel_sizes),
            generator=rng.cpu,
        )  # built on the CPU: the same kernels on every device, moved by filter2d
        out = filter2d(hr, kernels)
        mode = self.resize_modes[rng.choice(self.resize_prob)]
        out = _resize(out, mode, size=(h // scale, w // scale))
        noisy = torch.rand(b, generator=rng.cpu, dtype=torch.float64) < self.noise_prob
        gauss = torch.rand(b, generator=rng.cpu, dtype=torch.float64) < self.gaussian_noise_prob
        out = _add_noise(out, rng, noisy & gauss, noisy & ~gauss, self.noise_range, self.poisson_scale_range,
                         self.gray_noise_prob)
        apply = torch.rand(b, generator=rng.cpu, dtype=torch.float64) < self.jpeg_prob
        out = _jpeg_subset(out, rng, self.jpeg_range, apply)
        out = clip_round(out, clip=True, rounds=self.quantize)
        return {"lr": out.contiguous(), "hr": hr}

    def __repr__(self) -> str:
        return f"ClassicalDegradation(scale={self.scale}, seed={self.seed})"


# ---- training-pair pool ------------------------------------------------------------------------------------------
class TrainingPairPool:
    """Real-ESRGAN's training-pair pool: mixes (LR, HR, ...) pairs across batches (one pool per process).

    While the pool fills, batches pass through unchanged and are copied in. Once full, each batch swaps with
    ``B`` pairs picked at random from the pool (the reference shuffles the whole pool and swaps the first ``B``:
    the same distribution). ``size`` need not be a multiple of the batch size; a batch larger than the pool,
    or one whose shapes/device differ from the pool's, resets the pool.
    """

    def __init__(self, size: int = 180) -> None:
        if size < 0:
            raise ValueError(f"degradation.queue_size must be >= 0, got {size}")
        self.size = int(size)
        self.store: dict[str, torch.Tensor] | None = None
        self.count = 0

    def state_dict(self) -> dict:
        """The pool's pairs (CPU copies) and fill count; e.g. 180 x (3x64² + 2 x 3x256²) fp32 = 290 MB for the
        Real-ESRGAN x4 recipe."""
        store = {k: v.cpu() for k, v in self.store.items()} if self.store is not None else None
        return {"size": self.size, "count": self.count, "store": store}

    def load_state_dict(self, state: dict) -> None:
        if int(state["size"]) != self.size:
            log.warning("degradation: the checkpoint's pool holds %s pairs, degradation.queue_size=%s; it starts "
                        "empty", state["size"], self.size)
            self.store, self.count = None, 0
            return
        self.store, self.count = state["store"], int(state["count"])

    def _compatible(self, batch: dict[str, torch.Tensor]) -> bool:
        return (
            self.store is not None
            and self.store.keys() == batch.keys()
            and all(self.store[k].shape[1:] == v.shape[1:] and self.store[k].device == v.device
                    for k, v in batch.items())
        )

    def __call__(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        b = next(iter(batch.values())).shape[0]
        if self.size == 0 or b > self.size:
            return batch
        device = next(iter(batch.values())).device
        if self.store is not None and next(iter(self.store.values())).device != device:  # restored on the CPU
            self.store = {k: to_device(v, device) for k, v in self.store.items()}
        if not self._compatible(batch):
            self.store = {k: v.new_zeros((self.size, *v.shape[1:])) for k, v in batch.items()}
            self.count = 0
        if self.count < self.size:
            n = min(b, self.size - self.count)
            for k, v in batch.items():
                self.store[k][self.count:self.count + n] = v[:n]
            self.count += n
            return batch
        device = next(iter(batch.values())).device
        idx = to_device(torch.randperm(self.size, generator=generator, device=generator.device)[:b], device)
        out = {}
        for k, v in batch.items():
            out[k] = self.store[k][idx].clone()
            self.store[k][idx] = v
        return out


# ---- Real-ESRGAN ---------------------------------------------------------------------------------------------------
class RealESRGANDegradation(_RandomDegradation):
    """Real-ESRGAN's second-order degradation (Wang et al., ICCVW 2021), batched, on the batch's device.

    Per batch: ``hr_usm = usm_sharp(hr)``; from it (``sharpen_input``) two rounds of [blur (per-sample kernel;
    the second with probability ``second_blur_prob``) -> random resize (up/down/keep with ``resize_prob``,
    factor in ``resize_range``, mode from ``resize_modes``) -> Gaussian or Poisson noise (gray with
    ``gray_noise_prob``) -> JPEG (quality per sample)], where the second round's JPEG is taken together with
    [resize to ``H / scale`` + final sinc filter (probability ``final_sinc_prob``)] in random order (1/2 each);
    then clamp and round to 8 bits. Per-sample draws: kernels, noise sigma/scale, gray, JPEG quality;
    per-batch draws (as the reference): resize direction/factor/mode, Gaussian vs Poisson, the final order.
    The second blur is decided per sample (the reference decides per batch; same marginal probability).

    Training batches go through the training-pair pool (``queue_size``; 0 disables it) and may come back
    swapped with earlier pairs; ``crop_size`` (the reference's ``gt_size``) randomly crops the HR/LR pair after
    degradation (``null``: keep the whole patch). Output: ``lr``, ``hr`` and ``hr_usm``.

    Every default is the published one (``options/train_realesrgan_x4plus.yml`` and ``RealESRGANDataset``).
    """

    def __init__(
        self,
        scale: int = 4,
        seed: int = 0,
        queue_size: int = 180,
        crop_size: int | None = None,
        sharpen_input: bool = True,
        usm_weight: float = 0.5,
        usm_radius: int = 50,
        usm_threshold: float = 10,
        kernel_sizes: Sequence[int] = KERNEL_SIZES,
        resize_modes: Sequence[str] = ("area", "bilinear", "bicubic"),
        # first degradation
        kernel_list: Sequence[str] = KERNEL_TYPES,
        kernel_prob: Sequence[float] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
        sinc_prob: float = 0.1,
        blur_sigma: Sequence[float] = (0.2, 3.0),
        betag_range: Sequence[float] = (0.5, 4.0),
        betap_range: Sequence[float] = (1.0, 2.0),
        resize_prob: Sequence[float] = (0.2, 0.7, 0.1),
        resize_range: Sequence[float] = (0.15, 1.5),
        gaussian_noise_prob: float = 0.5,
        noise_range: Sequence[float] = (1.0, 30.0),
        poisson_scale_range: Sequence[float] = (0.05, 3.0),
        gray_noise_prob: float = 0.4,
        jpeg_range: Sequence[float] = (30.0, 95.0),
        # second degradation
        second_blur_prob: float = 0.8,
        kernel_list2: Sequence[str] = KERNEL_TYPES,
        kernel_prob2: Sequence[float] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
        sinc_prob2: float = 0.1,
        blur_sigma2: Sequence[float] = (0.2, 1.5),
        betag_range2: Sequence[float] = (0.5, 4.0),
        betap_range2: Sequence[float] = (1.0, 2.0),
        resize_prob2: Sequence[float] = (0.3, 0.4, 0.3),
        resize_range2: Sequence[float] = (0.3, 1.2),
        gaussian_noise_prob2: float = 0.5,
        noise_range2: Sequence[float] = (1.0, 25.0),
        poisson_scale_range2: Sequence[float] = (0.05, 2.5),
        gray_noise_prob2: float = 0.4,
        jpeg_range2: Sequence[float] = (30.0, 95.0),
        # final sinc filter
        final_sinc_prob: float = 0.8,
    ) -> None:
        super().__init__(scale, seed)
        self.pool = TrainingPairPool(int(queue_size))
        if crop_size is not None and (crop_size < scale or crop_size % scale):
            raise ValueError(f"degradation.crop_size={crop_size} must be a positive multiple of scale={scale}")
        self.crop_size = crop_size
        self.sharpen_input = sharpen_input
        self.usm = (float(usm_weight), int(usm_radius), float(usm_threshold))
        self.kernel_sizes = _check_sizes(kernel_sizes)
        self.resize_modes = _check_modes("resize_modes", resize_modes)
        self.rounds = []
        for i, suffix in enumerate(("", "2")):
            klist, kprob = _check_kernels(f"kernel_list{suffix}", (kernel_list, kernel_list2)[i],
                                          (kernel_prob, kernel_prob2)[i])
            self.rounds.append({
                "kernel_list": klist,
                "kernel_prob": kprob,
                "sinc_prob": _check_prob(f"sinc_prob{suffix}", (sinc_prob, sinc_prob2)[i]),
                "blur_prob": 1.0 if i == 0 else _check_prob("second_blur_prob", second_blur_prob),
                "blur_sigma": _check_range(f"blur_sigma{suffix}", (blur_sigma, blur_sigma2)[i], 1e-3),
                "betag_range": _check_range(f"betag_range{suffix}", (betag_range, betag_range2)[i], 1e-3),
                "betap_range": _check_range(f"betap_range{suffix}", (betap_range, betap_range2)[i], 1e-3),
                "resize_prob": _check_probs(f"resize_prob{suffix}", (resize_prob, resize_prob2)[i], 3),
                "resize_range": _check_range(f"resize_range{suffix}", (resize_range, resize_range2)[i], 1e-3),
                "gaussian_noise_prob": _check_prob(f"gaussian_noise_prob{suffix}",
                                                   (gaussian_noise_prob, gaussian_noise_prob2)[i]),
                "noise_range": _check_range(f"noise_range{suffix}", (noise_range, noise_range2)[i], 0.0),
                "poisson_scale_range": _check_range(f"poisson_scale_range{suffix}",
                                                    (poisson_scale_range, poisson_scale_range2)[i], 0.0),
                "gray_noise_prob": _check_prob(f"gray_noise_prob{suffix}", (gray_noise_prob, gray_noise_prob2)[i]),
                "jpeg_range": _check_range(f"jpeg_range{suffix}", (jpeg_range, jpeg_range2)[i], 1.0, 100.0),
            })
        self.final_sinc_prob = _check_prob("final_sinc_prob", final_sinc_prob)

    # one draw of the resize factor, as the reference: up in [1, max], down in [min, 1], keep 1
    @staticmethod
    def _factor(rng: _Rng, probs: Sequence[float], factor_range: tuple[float, float]) -> float:
        kind = rng.choice(probs)
        if kind == 0:
            return float(rng.uniform(1, 1.0, factor_range[1])[0])
        if kind == 1:
            return float(rng.uniform(1, factor_range[0], 1.0)[0])
        return 1.0

    def _kernels(self, b: int, rnd: dict, rng: _Rng, device: torch.device) -> torch.Tensor:
        return random_blur_kernels(
            b, kernel_sizes=self.kernel_sizes, kernel_list=rnd["kernel_list"], kernel_prob=rnd["kernel_prob"],
            sigma_range=rnd["blur_sigma"], betag_range=rnd["betag_range"], betap_range=rnd["betap_range"],
            sinc_prob=rnd["sinc_prob"], blur_prob=rnd["blur_prob"], pad_to=21, generator=rng.cpu,
        )  # built on the CPU (same on every device); filter2d moves them

    def _noise(self, x: torch.Tensor, rnd: dict, rng: _Rng) -> torch.Tensor:
        b = x.shape[0]
        gaussian = rng.rand() < rnd["gaussian_noise_prob"]
        use_g = torch.full((b,), gaussian)
        return _add_noise(x, rng, use_g, ~use_g, rnd["noise_range"], rnd["poisson_scale_range"],
                          rnd["gray_noise_prob"])

    def _degrade(self, hr: torch.Tensor, scale: int, rng: _Rng, training: bool) -> dict:
        b, _, h, w = hr.shape
        weight, radius, threshold = self.usm
        hr_usm = usm_sharp(hr, weight, radius, threshold)
        first, second = self.rounds
        # kernels are drawn up front, as the reference's dataset does
        k1 = self._kernels(b, first, rng, hr.device)
        k2 = self._kernels(b, second, rng, hr.device)
        sinc = random_sinc_kernels(b, prob=self.final_sinc_prob, kernel_sizes=self.kernel_sizes, pad_to=21,
                                   generator=rng.cpu)

        # first degradation
        out = filter2d(hr_usm if self.sharpen_input else hr, k1)
        factor = self._factor(rng, first["resize_prob"], first["resize_range"])
        out = _resize(out, self.resize_modes[rng.choice([1] * len(self.resize_modes))], factor=factor)
        out = self._noise(out, first, rng)
        out = _jpeg_subset(out, rng, first["jpeg_range"])

        # second degradation
        out = filter2d(out, k2)
        factor = self._factor(rng, second["resize_prob"], second["resize_range"])
        mode = self.resize_modes[rng.choice([1] * len(self.resize_modes))]
        out = _resize(out, mode, size=(int(h / scale * factor), int(w / scale * factor)))
        out = self._noise(out, second, rng)

        # [resize back + final sinc] and JPEG, in random order
        resize_first = rng.rand() < 0.5
        final_mode = self.resize_modes[rng.choice([1] * len(self.resize_modes))]
        if resize_first:
            out = filter2d(_resize(out, final_mode, size=(h // scale, w // scale)), sinc)
            out = _jpeg_subset(out, rng, second["jpeg_range"])
        else:
            out = _jpeg_subset(out, rng, second["jpeg_range"])
            out = filter2d(_resize(out, final_mode, size=(h // scale, w // scale)), sinc)
        lr = clip_round(out, clip=True, rounds=True).contiguous()

        result = {"lr": lr, "hr": hr, "hr_usm": hr_usm}
        if self.crop_size is not None:
            result = self._crop(result, scale, rng)
        if training:
            result = self.pool(result, rng.cpu)
        return result

    def _crop(self, pair: dict, scale: int, rng: _Rng) -> dict:
        """One random aligned crop of ``crop_size`` HR px for the whole batch (BasicSR's paired_random_crop)."""
        lr = pair["lr"]
        lr_size = self.crop_size // scale
        h, w = lr.shape[-2:]
        if h < lr_size or w < lr_size:
            raise ValueError(f"degradation.crop_size={self.crop_size} is larger than the HR patch ({h * scale}px)")
        top = int(torch.randint(h - lr_size + 1, (), generator=rng.cpu))
        left = int(torch.randint(w - lr_size + 1, (), generator=rng.cpu))
        out = {"lr": lr[..., top:top + lr_size, left:left + lr_size].contiguous()}
        for key in ("hr", "hr_usm"):
            t, l_ = top * scale, left * scale
            out[key] = pair[key][..., t:t + self.crop_size, l_:l_ + self.crop_size].contiguous()
        return out

    def __repr__(self) -> str:
        return f"RealESRGANDegradation(scale={self.scale}, seed={self.seed}, queue_size={self.pool.size})"
