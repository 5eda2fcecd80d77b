"""NIQE of every Set5 and Set14 HR image, with the time each takes; writes ``experiments/metrics/niqe.md``.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 python experiments/metrics/niqe_table.py [--shared ../shared] [--repeats 3]

Two columns: the whole image (``crop_border=0``) and the PIRM 2018 setting (``crop_border=4``). The time is the
median wall time of ``--repeats`` calls of ``niqe(img, 0)`` (after one warm-up call), single-threaded if
``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from src.data.image_io import list_images, load_image  # noqa: E402
from src.metrics.niqe import niqe  # noqa: E402

MATLAB_BABOON = 5.72957  # official MATLAB niqe_release on Set14 baboon.png, whole image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "niqe.md")
    args = parser.parse_args()

    rows = []
    means = {}
    for set_name in ("Set5", "Set14"):
        values0, values4 = [], []
        for path in list_images(args.shared / "benchmarks" / set_name / "HR"):
            img = load_image(path)
            niqe(img, 0)  # warm-up (caches)
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                v0 = niqe(img, 0)
                times.append(time.perf_counter() - t0)
            v4 = niqe(img, 4)
            values0.append(v0)
            values4.append(v4)
            size = f"{img.shape[2]}x{img.shape[1]} {'gray' if img.shape[0] == 1 else 'RGB'}"
            rows.append((set_name, path.name, size, v0, v4, statistics.median(times)))
            print(f"{set_name:6s} {path.name:16s} {v0:8.4f} {v4:8.4f} {1000 * statistics.median(times):7.1f} ms")
        means[set_name] = (sum(values0) / len(values0), sum(values4) / len(values4))

    baboon = next(r for r in rows if r[0] == "Set14" and r[1] == "baboon.png")
    lines = [
        "# NIQE of the Set5 and Set14 HR images",
        "",
        "Produced by `OMP_NUM_THREADS=1 python experiments/metrics/niqe_table.py` (`src/metrics/niqe.py`).",
        "",
        "Protocol: the PIRM 2018 / official MATLAB `niqe_release` computation: uint8 image -> MATLAB `rgb2ycbcr` Y",
        "rounded to uint8 (gray images as R = G = B) -> shave `crop_border` -> crop to a multiple of 96 -> 96x96",
        "blocks (all of them), 2 scales, 36 features -> distance to the official pristine model.",
        "",
        f"Check: Set14 `baboon.png`, whole image: **{baboon[3]:.5f}** (MATLAB: {MATLAB_BABOON}).",
        "",
        f"Machine: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s); time = median"
        f" of {args.repeats} calls of `niqe(img, 0)` after a warm-up.",
        "",
        "| set | image | size (WxH) | NIQE (crop 0) | NIQE (crop 4, PIRM) | time (ms) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for set_name, name, size, v0, v4, t in rows:
        lines.append(f"| {set_name} | {name} | {size} | {v0:.4f} | {v4:.4f} | {1000 * t:.1f} |")
    for set_name, (m0, m4) in means.items():
        lines.append(f"| {set_name} | **mean** | | **{m0:.4f}** | **{m4:.4f}** | |")
    lines += [
        "",
        "Notes:",
        "- Rounding Y to uint8 matters: with unrounded Y (BasicSR's `to_y_channel` without its `round()`), baboon",
        "  gives 5.636 instead of 5.730.",
        "- NIQE is computed on whole 96x96 blocks only, so shaving 4 px can drop a row or column of blocks",
        "  (baboon: 5x5 -> 4x5 blocks) and move the score by a few tenths.",
        "- Set14 `bridge.png` is a gray image; it is scored as R = G = B (its Y is `16 + 219/255 * gray`, rounded).",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
