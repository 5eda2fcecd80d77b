"""MATLAB bicubic ``imresize``: our batched torch version vs a straightforward per-image NumPy loop.

The loop is the textbook port of MATLAB's ``imresize.m`` (as in BasicSR's ``matlab_functions.imresize``): per
image and per dimension, MATLAB's ``contributions`` (cubic kernel a = -0.5, stretched by 1/scale when
downscaling, mirrored boundary indices, weights normalised per output sample), then one weighted sum per output
row / column in a Python loop, in float64. Written for this benchmark.

Ours: ``src.degradations.imresize`` -- each 1-D resize is one matmul of the whole batch with a cached dense
(out, in) weight matrix, float32 (float64 also measured for the output difference).

    OMP_NUM_THREADS=1 .venv/bin/python experiments/benchmarks/degradation/bench_imresize.py
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from experiments.benchmarks.machine import cpu_name  # noqa: E402
from src.degradations import imresize  # noqa: E402


def np_cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


def np_contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    width = 4.0 / scale if scale < 1 else 4.0
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    dist = u[:, None] - idx
    w = scale * np_cubic(scale * dist) if scale < 1 else np_cubic(dist)
    w = w / w.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    idx = aux[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(w != 0, axis=0)
    return w[:, keep], idx[:, keep]


def np_imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """(H, W, C) float64 -> resized, MATLAB order (height first on equal scales)."""
    h, w = img.shape[:2]
    out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
    wh, ih = np_contributions(h, out_h, scale)
    tmp = np.empty((out_h, w, img.shape[2]))
    for i in range(out_h):  # one output row at a time
        tmp[i] = np.tensordot(wh[i], img[ih[i]], axes=1)
    ww, iw = np_contributions(w, out_w, scale)
    out = np.empty((out_h, out_w, img.shape[2]))
    for j in range(out_w):
        out[:, j] = np.tensordot(tmp[:, iw[j]], ww[j], axes=([1], [0]))
    return out


def timed(fn, iters: int) -> float:
    fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"date {datetime.date.today()}  torch {torch.__version__}  numpy {np.__version__}  "
          f"{cpu_name()} ({os.cpu_count()} cores visible), {torch.get_num_threads()} torch thread(s)\n")
    g = torch.Generator().manual_seed(0)
    cases = [("16x3x256x256, x1/2", (16, 3, 256, 256), 1 / 2), ("16x3x256x256, x1/3", (16, 3, 256, 256), 1 / 3),
             ("16x3x256x256, x1/4", (16, 3, 256, 256), 1 / 4), ("16x3x64x64, x4 (up)", (16, 3, 64, 64), 4.0),
             ("1x3x1024x1024, x1/4", (1, 3, 1024, 1024), 1 / 4)]
    print("| input, scale | NumPy loop (ms) | ours fp32 (ms) | speed-up | max abs diff fp32 | max abs diff fp64 |")
    print("|---|---|---|---|---|---|")
    for name, shape, scale in cases:
        x = torch.rand(shape, generator=g)
        x_np = x.permute(0, 2, 3, 1).double().numpy()
        ref = np.stack([np_imresize(img, scale) for img in x_np])
        ours32 = imresize(x, scale).permute(0, 2, 3, 1).double().numpy()
        ours64 = imresize(x.double(), scale).permute(0, 2, 3, 1).numpy()
        t_loop = timed(lambda x_np=x_np, scale=scale: [np_imresize(img, scale) for img in x_np], args.iters)
        t_ours = timed(lambda x=x, scale=scale: imresize(x, scale), args.iters * 4)
        print(f"| {name} | {1000 * t_loop:.1f} | {1000 * t_ours:.2f} | {t_loop / t_ours:.0f}x | "
              f"{np.abs(ours32 - ref).max():.1e} | {np.abs(ours64 - ref).max():.1e} |")


if __name__ == "__main__":
    main()
