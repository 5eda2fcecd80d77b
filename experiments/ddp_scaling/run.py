"""Training throughput (images/s) with 1 and 2 data-parallel processes: ``python experiments/ddp_scaling/run.py``.

Each run trains a reduced EDSR-baseline (32 channels, 4 blocks, x4, 96 px HR patches, batch ``--batch`` per
process, bicubic degradation, the embedded sample photos) for ``--epochs`` epochs of the same number of images
and reads ``train/images_per_s`` (all processes, validation excluded) from its ``csv/metrics.csv``; the first epoch
(warm-up) is left out. Writes ``results.md`` beside this file with the machine and its load.

GPUs: ``--accelerator gpu --devices 1 2 4 8`` (one process per GPU, NCCL), e.g. with the full model:
``python experiments/ddp_scaling/run.py --accelerator gpu --devices 1 2 --full``.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def run(devices: int, args: argparse.Namespace, out: Path) -> list[float]:
    steps_per_epoch = args.images // (args.batch * devices)
    overrides = [
        "model=edsr_baseline", "data=sample", "scale=4", "data.patch_size=96", f"data.batch_size={args.batch}",
        f"data.repeat={args.images // 7}", "logger=[csv]", "report.enabled=false", "trainer.num_sanity_val_steps=0",
        f"trainer.max_steps={steps_per_epoch * args.epochs}", "trainer.val_check_interval=100000",
        "trainer.enable_progress_bar=false", f"trainer.accelerator={args.accelerator}", f"trainer.devices={devices}",
        f"strategy={'ddp' if devices > 1 else 'auto'}", f"hydra.run.dir={out}",
    ]
    if not args.full:
        overrides += ["model.arch.num_feat=32", "model.arch.num_block=4"]
    if args.accelerator == "gpu":
        overrides += ["trainer.precision=bf16-mixed"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    subprocess.run([sys.executable, "-m", "src.train", *overrides], cwd=REPO, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    with (out / "csv" / "metrics.csv").open() as fh:
        return [float(r["train/images_per_s"]) for r in csv.DictReader(fh) if r.get("train/images_per_s")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--batch", type=int, default=8, help="per process")
    parser.add_argument("--images", type=int, default=448, help="training images per epoch (multiple of 7)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="OMP threads per process")
    parser.add_argument("--full", action="store_true", help="the paper's EDSR-baseline (64 channels, 16 blocks)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for devices in args.devices:
            load = os.getloadavg()[0]
            start = time.time()
            per_epoch = run(devices, args, Path(tmp) / f"d{devices}")
            rows.append((devices, statistics.median(per_epoch[1:]), per_epoch, time.time() - start, load))
            print(f"{devices} process(es): {rows[-1][1]:.1f} images/s (epochs: {[round(v, 1) for v in per_epoch]})")
    base = rows[0][1]
    lines = [
        f"Machine: {platform.node()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"accelerator={args.accelerator}, OMP_NUM_THREADS={args.threads} per process, "
        f"Python {platform.python_version()}",
        f"Model: EDSR-baseline {'(64, 16)' if args.full else '(32 channels, 4 blocks)'} x4, 96 px HR patches, batch "
        f"{args.batch} per process, {args.images} images per epoch, median of epochs 2..{args.epochs}",
        "",
        "| processes | images/s | speed-up | per-epoch images/s | wall s | load avg at start |",
        "|---|---|---|---|---|---|",
    ]
    for devices, median, per_epoch, wall, load in rows:
        lines.append(f"| {devices} | {median:.1f} | {median / base:.2f}x | {', '.join(f'{v:.1f}' for v in per_epoch)} "
                     f"| {wall:.0f} | {load:.1f} |")
    (HERE / f"results_{args.accelerator}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
