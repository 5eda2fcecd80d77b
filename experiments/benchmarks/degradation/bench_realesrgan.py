"""Throughput of the Real-ESRGAN degradation: our batched torch pipeline vs a per-image CPU loop, same run.

Input: a 16 x 3 x 256 x 256 batch of crops of scikit-image's sample photos (float32 in [0, 1]), scale 4.

* ``ours``: ``RealESRGANDegradation(queue_size=0)(SRBatch(hr=hr, training=True))`` (USM of the HR, two
  degradation rounds, final resize+sinc / JPEG): per-sample kernels built in one batch, one grouped convolution
  per blur, batched noise and JPEG, separable USM.
* ``loop``: what most CPU data pipelines do (e.g. Real-ESRGAN's own ``degradations.py`` helpers and
  BSRGAN-style dataset code): for each image, build its kernels with NumPy/SciPy (``scipy.special.j1`` for the
  sinc), filter with ``cv2.filter2D`` (reflect-101 border), resize with ``cv2.resize``, add NumPy noise,
  JPEG-encode/decode with ``cv2.imencode``/``imdecode`` and USM with ``cv2.GaussianBlur`` (separable inside
  OpenCV). Same parameter distributions (the published defaults), drawn with NumPy. Written for this benchmark.
  OpenCV is not a project dependency: it is looked up on ``--cv2-path`` (``pip install --target /tmp/cv2pkg
  opencv-python-headless``); without it the loop falls back to ``scipy.ndimage.correlate``, PIL resize and
  PIL JPEG (slower).

Both run single-threaded by default (``--threads``): the machine is shared. Each method runs ``--iters``
batches after one warm-up; the random draws differ per batch (a downscale is cheaper than an upscale), so the
mean over many batches is what compares. Component timings of our pipeline are printed too (USM separable vs
the dense 51 x 51 filter the reference applies).

    OMP_NUM_THREADS=1 .venv/bin/python experiments/benchmarks/degradation/bench_realesrgan.py --iters 20
"""

from __future__ import annotations

import argparse
import datetime
import functools
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.special
import torch

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from experiments.benchmarks.machine import cpu_name  # noqa: E402
from src.data.batch import SRBatch  # noqa: E402
from src.degradations import RealESRGANDegradation, filter2d, jpeg, usm_sharp  # noqa: E402
from src.degradations.kernels import random_blur_kernels  # noqa: E402
from src.degradations.noise import poisson_noise  # noqa: E402

KERNEL_SIZES = [7, 9, 11, 13, 15, 17, 19, 21]
KERNEL_LIST = ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]
KERNEL_PROB = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]


def sample_batch(n: int = 16, size: int = 256) -> torch.Tensor:
    from skimage import io

    from src.data.sample_photos import sample_photo_paths

    names = ["astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "hubble_deep_field", "retina", "ihc"]
    crops = []
    for i in range(n):
        img = io.imread(sample_photo_paths([names[i % len(names)]])[0])[..., :3]
        h, w = img.shape[:2]
        top, left = (i * 37) % (h - size), (i * 53) % (w - size)
        crops.append(torch.from_numpy(img[top:top + size, left:left + size].copy()).permute(2, 0, 1))
    return torch.stack(crops).float() / 255.0


# ---- the per-image baseline ----------------------------------------------------------------------------------------
class Backend:
    """cv2 when available, else scipy/PIL equivalents."""

    def __init__(self, cv2_path: str | None, threads: int) -> None:
        self.cv2 = None
        if cv2_path:
            sys.path.append(cv2_path)
        try:
            import cv2

            cv2.setNumThreads(threads)
            self.cv2 = cv2
        except ImportError:
            pass
        self.name = f"OpenCV {self.cv2.__version__}" if self.cv2 else "scipy.ndimage + PIL (no OpenCV found)"

    def filter(self, img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        if self.cv2:
            return self.cv2.filter2D(img, -1, kernel.astype(np.float32), borderType=self.cv2.BORDER_REFLECT_101)
        import scipy.ndimage as ndi

        return np.stack([ndi.correlate(img[..., c], kernel, mode="mirror") for c in range(3)], -1)

    def gaussian_blur(self, img: np.ndarray, ksize: int) -> np.ndarray:
        if self.cv2:
            return self.cv2.GaussianBlur(img, (ksize, ksize), 0)
        import scipy.ndimage as ndi

        sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
        x = np.arange(ksize) - (ksize - 1) / 2
        k = np.exp(-x * x / (2 * sigma * sigma))
        k /= k.sum()
        out = ndi.correlate1d(img, k, axis=0, mode="mirror")
        return ndi.correlate1d(out, k, axis=1, mode="mirror")

    def resize(self, img: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
        h, w = size
        if self.cv2:
            interp = {"area": self.cv2.INTER_AREA, "bilinear": self.cv2.INTER_LINEAR, "bicubic": self.cv2.INTER_CUBIC}
            return self.cv2.resize(img, (w, h), interpolation=interp[mode])
        from PIL import Image

        resample = {"area": Image.BOX, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[mode]
        return np.stack([np.asarray(Image.fromarray(img[..., c]).resize((w, h), resample)) for c in range(3)], -1)

    def jpeg(self, img: np.ndarray, quality: int) -> np.ndarray:
        u8 = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if self.cv2:
            _, enc = self.cv2.imencode(".jpg", u8, [int(self.cv2.IMWRITE_JPEG_QUALITY), quality])
            return self.cv2.imdecode(enc, 1).astype(np.float32) / 255.0
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(u8).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        return np.asarray(Image.open(buf)).astype(np.float32) / 255.0


def np_kernel(rng: np.random.Generator, sigma_range, sinc_prob: float) -> np.ndarray:
    """One kernel with the published distribution, NumPy/SciPy formulas, zero-padded to 21 x 21."""
    k = int(rng.choice(KERNEL_SIZES))
    ax = np.arange(-(k // 2), k // 2 + 1, dtype=np.float64)
    xx, yy = np.meshgrid(ax, ax)
    if rng.uniform() < sinc_prob:
        w = rng.uniform(math.pi / 3, math.pi) if k < 13 else rng.uniform(math.pi / 5, math.pi)
        r = np.sqrt(xx**2 + yy**2)
        with np.errstate(divide="ignore", invalid="ignore"):
            kernel = w * scipy.special.j1(w * r) / (2 * np.pi * r)
        kernel[k // 2, k // 2] = w**2 / (4 * np.pi)
    else:
        kind = KERNEL_LIST[rng.choice(len(KERNEL_LIST), p=np.array(KERNEL_PROB) / sum(KERNEL_PROB))]
        sx = rng.uniform(*sigma_range)
        if kind.endswith("aniso"):
            sy, theta = rng.uniform(*sigma_range), rng.uniform(-math.pi, math.pi)
        else:
            sy, theta = sx, 0.0
        rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        inv = np.linalg.inv(rot @ np.diag([sx * sx, sy * sy]) @ rot.T)
        q = inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy
        if kind in ("iso", "aniso"):
            kernel = np.exp(-0.5 * q)
        else:
            lo, hi = (0.5, 4.0) if kind.startswith("generalized") else (1.0, 2.0)
            beta = rng.uniform(lo, 1) if rng.uniform() < 0.5 else rng.uniform(1, hi)
            kernel = np.exp(-0.5 * q**beta) if kind.startswith("generalized") else 1 / (1 + q**beta)
    kernel = kernel / kernel.sum()
    pad = (21 - k) // 2
    return np.pad(kernel, pad)


def np_noise(img: np.ndarray, rng: np.random.Generator, gaussian: bool, sigma_range, poisson_range) -> np.ndarray:
    gray = rng.uniform() < 0.4
    if gaussian:
        sigma = rng.uniform(*sigma_range) / 255.0
        shape = img.shape[:2] + ((1,) if gray else (3,))
        noise = rng.standard_normal(shape).astype(np.float32) * sigma
    else:
        scale = rng.uniform(*poisson_range)
        src = img @ np.array([0.114, 0.587, 0.299], np.float32)[::-1].copy() if gray else img
        src = np.clip(np.round(src * 255), 0, 255) / 255
        vals = 2 ** np.ceil(np.log2(len(np.unique(src))))
        noise = (rng.poisson(src * vals) / vals - src).astype(np.float32) * scale
        if gray:
            noise = noise[..., None]
    return np.clip(img + noise, 0, 1)


def resize_factor(rng: np.random.Generator, probs, factor_range) -> float:
    kind = rng.choice(3, p=np.array(probs) / sum(probs))
    return [rng.uniform(1, factor_range[1]), rng.uniform(factor_range[0], 1), 1.0][kind]


def loop_degrade(batch: np.ndarray, rng: np.random.Generator, be: Backend, scale: int = 4) -> np.ndarray:
    """The per-image pipeline on (B, H, W, 3) float32; returns (B, H/scale, W/scale, 3)."""
    out_list = []
    modes = ["area", "bilinear", "bicubic"]
    for img in batch:
        h, w = img.shape[:2]
        blur = be.gaussian_blur(img, 51)  # USM of the HR (Real-ESRGAN's usm_sharp)
        residual = img - blur
        soft = be.gaussian_blur((np.abs(residual) * 255 > 10).astype(np.float32), 51)
        x = soft * np.clip(img + 0.5 * residual, 0, 1) + (1 - soft) * img
        k1, k2 = np_kernel(rng, (0.2, 3.0), 0.1), np_kernel(rng, (0.2, 1.5), 0.1)
        sinc = np_kernel(rng, (0.2, 1.5), 1.0) if rng.uniform() < 0.8 else None
        x = be.filter(x, k1)
        f = resize_factor(rng, (0.2, 0.7, 0.1), (0.15, 1.5))
        x = be.resize(x, (max(1, int(h * f)), max(1, int(w * f))), modes[rng.integers(3)])
        x = np_noise(x, rng, rng.uniform() < 0.5, (1, 30), (0.05, 3))
        x = be.jpeg(x, int(rng.uniform(30, 95)))
        if rng.uniform() < 0.8:
            x = be.filter(x, k2)
        f = resize_factor(rng, (0.3, 0.4, 0.3), (0.3, 1.2))
        x = be.resize(x, (max(1, int(h / scale * f)), max(1, int(w / scale * f))), modes[rng.integers(3)])
        x = np_noise(x, rng, rng.uniform() < 0.5, (1, 25), (0.05, 2.5))
        final = (h // scale, w // scale)
        if rng.uniform() < 0.5:
            x = be.resize(x, final, modes[rng.integers(3)])
            x = be.filter(x, sinc) if sinc is not None else x
            x = be.jpeg(x, int(rng.uniform(30, 95)))
        else:
            x = be.jpeg(x, int(rng.uniform(30, 95)))
            x = be.resize(x, final, modes[rng.integers(3)])
            x = be.filter(x, sinc) if sinc is not None else x
        out_list.append(np.clip(np.round(x * 255), 0, 255) / 255)
    return np.stack(out_list)


# ---- timing ---------------------------------------------------------------------------------------------------------
def timed(fn, iters: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cv2-path", default="/tmp/cv2pkg")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    hr = sample_batch().to(device)
    be = Backend(args.cv2_path, args.threads)
    print(f"date {datetime.date.today()}  torch {torch.__version__}  numpy {np.__version__}  loop backend: {be.name}")
    print(f"machine: {cpu_name()} ({os.cpu_count()} cores visible), {torch.get_num_threads()} torch thread(s), "
          f"device {device}")
    print(f"batch {tuple(hr.shape)}, {args.iters} batches after a warm-up\n")

    deg = RealESRGANDegradation(scale=4, seed=0, queue_size=0)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def ours():
        deg(SRBatch(hr=hr, training=True)).lr.sum().item()
        sync()

    import src.degradations.pipelines as pipelines

    def ours_dense_usm():  # the reference's dense 51 x 51 USM filter inside our pipeline
        pipelines.usm_sharp = functools.partial(usm_sharp, separable=False)
        try:
            ours()
        finally:
            pipelines.usm_sharp = usm_sharp

    hr_np = hr.permute(0, 2, 3, 1).cpu().numpy()
    rng = np.random.default_rng(0)
    t_ours = timed(ours, args.iters)
    t_loop = timed(lambda: loop_degrade(hr_np, rng, be), args.iters)
    t_dense = timed(ours_dense_usm, max(3, args.iters // 2))
    rows = [("ours (batched torch)", t_ours), (f"per-image loop ({be.name.split(' (')[0]})", t_loop),
            ("ours with the dense 51x51 USM filter of the reference", t_dense)]
    print("| pipeline | mean s/batch | median s/batch | images/s |")
    print("|---|---|---|---|")
    for name, t in rows:
        mean = statistics.mean(t)
        print(f"| {name} | {mean:.3f} | {statistics.median(t):.3f} | {hr.shape[0] / mean:.1f} |")
    print(f"\nspeed-up (loop mean / ours mean): {statistics.mean(t_loop) / statistics.mean(t_ours):.2f}x")

    # components of ours
    g = torch.Generator().manual_seed(0)
    kernels = random_blur_kernels(16, generator=g, device=device)
    comp = {
        "USM, separable (ours)": lambda: usm_sharp(hr),
        "USM, dense 51x51 (reference)": lambda: usm_sharp(hr, separable=False),
        "16 kernels (build)": lambda: random_blur_kernels(16, generator=g, device=device),
        "blur 21x21 per sample": lambda: filter2d(hr, kernels),
        "JPEG 256x256 x16": lambda: jpeg(hr, torch.full((16,), 60.0, device=device)),
        "Poisson noise 256x256 x16": lambda: poisson_noise(hr, 1.0, False, None),
    }
    print("\n| component (16x3x256x256) | ms |")
    print("|---|---|")
    for name, fn in comp.items():
        t = timed(lambda fn=fn: (fn(), sync()), max(3, args.iters // 4))
        print(f"| {name} | {1000 * statistics.median(t):.1f} |")


if __name__ == "__main__":
    main()
