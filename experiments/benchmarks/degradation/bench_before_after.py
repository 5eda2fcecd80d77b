"""The Real-ESRGAN pipeline of this checkout vs that of an earlier revision, interleaved in one process.

A shared machine's load changes from minute to minute, so two separate runs of ``bench_realesrgan.py`` do not
compare two versions of the code. Here the base revision's ``src/`` (``git archive``) and the working tree's are
imported side by side, and each round times one batch of each, both pipelines seeded alike so that they make the
same random draws (same kernels, resize factors, noise, JPEG qualities): the per-round ratio compares equal work.
It also reports the largest difference between the two LR batches.

Input: the 16 x 3 x 256 x 256 batch of ``bench_realesrgan.py``, scale 4, ``RealESRGANDegradation(queue_size=0)``
with the published defaults, on training batches (``deg(SRBatch(hr=hr, training=True))``; revisions before the
typed batch: ``deg.degrade_batch(hr, training=True)``).

    OMP_NUM_THREADS=1 .venv/bin/python experiments/benchmarks/degradation/bench_before_after.py --base <rev>
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[3]


def import_pipeline(root: Path):
    """(``RealESRGANDegradation`` from the ``src`` package under ``root``, a function ``(deg, hr) -> LR`` of a
    training batch in that revision's interface), then forget that package's modules."""
    sys.path.insert(0, str(root))
    try:
        from src.degradations.pipelines import RealESRGANDegradation

        if (root / "src" / "data" / "batch.py").is_file():
            from src.data.batch import SRBatch

            return RealESRGANDegradation, lambda deg, hr: deg(SRBatch(hr=hr, training=True)).lr
        return RealESRGANDegradation, lambda deg, hr: deg.degrade_batch(hr, training=True)["lr"]
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == "src" or n.startswith("src.")]:
            del sys.modules[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare against (e.g. main~3)")
    parser.add_argument("--iters", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.base], check=True,
                         capture_output=True, text=True).stdout.strip()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], check=True, capture_output=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        base_cls, base_lr = import_pipeline(Path(tmp))
        head_cls, head_lr = import_pipeline(REPO)
        sys.path.insert(0, str(REPO / "experiments" / "benchmarks" / "degradation"))
        from bench_realesrgan import cpu_name, sample_batch

        hr = sample_batch()
        base, head = base_cls(scale=4, seed=0, queue_size=0), head_cls(scale=4, seed=0, queue_size=0)
        calls = {"base": (base, base_lr), "head": (head, head_lr)}
        base_lr(base, hr), head_lr(head, hr)  # warm-up, same draws
        times = {"base": [], "head": []}
        diff = 0.0
        for _ in range(args.iters):
            outs = {}
            for name, (deg, lr_of) in calls.items():
                start = time.perf_counter()
                outs[name] = lr_of(deg, hr)
                times[name].append(time.perf_counter() - start)
            diff = max(diff, (outs["base"] - outs["head"]).abs().max().item())
    ratios = [h / b for b, h in zip(times["base"], times["head"], strict=True)]
    print(f"{datetime.date.today()}  {cpu_name()} ({os.cpu_count()} cores visible), 1 torch thread, "
          f"torch {torch.__version__}; batch {tuple(hr.shape)}, {args.iters} interleaved batches after a warm-up\n")
    print("| code | mean s/batch | median s/batch |\n|---|---|---|")
    for name, label in (("base", f"base ({rev})"), ("head", "this checkout")):
        print(f"| {label} | {statistics.mean(times[name]):.3f} | {statistics.median(times[name]):.3f} |")
    print(f"\nratio this checkout / base: mean {statistics.mean(times['head']) / statistics.mean(times['base']):.3f}, "
          f"median of per-batch ratios {statistics.median(ratios):.3f}; max |LR difference| {diff:.1e}")


if __name__ == "__main__":
    main()
