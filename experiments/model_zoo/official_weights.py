"""Score the official weights of the zoo-II networks on Set5 / Set14 with an evaluation protocol of ``evaluate``.

    OMP_NUM_THREADS=1 nice .venv/bin/python experiments/model_zoo/official_weights.py --weights DIR \\
        [--protocol default|gray_as_rgb|lapsrn] [--only IMDN_x4.pth,…] [--benchmarks benchmarks] \\
        [--out experiments/model_zoo/official_weights.csv]

``DIR`` holds the released files under their official names (any subset): ``IMDN_x2/x3/x4.pth``
(Zheng222/IMDN ``checkpoints/``), ``carn.pth`` / ``carn_m.pth`` (nmhkahn/CARN-pytorch ``checkpoint/``),
``LapSRN_x2/x4/x8.mat`` and ``MSLapSRN_D5R<r>.mat`` + ``_opts.mat`` (phoenix104104/LapSRN
``pretrained_models/``). Each is built from ``conf/model/<m>.yaml`` and scored with ``conf/protocol/<p>.yaml``
exactly as ``python -m src.evaluate model=<m> model.weights=<file> protocol=<p>`` does (``default`` and
``gray_as_rgb``: the shipped LR files at x2/x3/x4, generated with the legacy ``imresize`` that made them at x8).
Rows are appended to the CSV as they finish (reruns skip finished rows).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from hydra import compose, initialize_config_dir  # noqa: E402

import src.config.validation  # noqa: E402,F401  (resolvers)
from src.evaluation.benchmark import benchmark_options, load_benchmark_set, score_set  # noqa: E402
from src.methods.loading import build_eval_model  # noqa: E402
from src.metrics.suite import build_metric_suite  # noqa: E402

# (model, file, scales, extra overrides)
JOBS = [
    ("imdn", "IMDN_x2.pth", [2], []),
    ("imdn", "IMDN_x3.pth", [3], []),
    ("imdn", "IMDN_x4.pth", [4], []),
    ("lapsrn", "LapSRN_x4.mat", [4], []),
    ("lapsrn", "LapSRN_x2.mat", [2], []),
    ("carn", "carn.pth", [2, 3, 4], []),
    ("carn_m", "carn_m.pth", [2, 3, 4], []),
    ("lapsrn", "LapSRN_x8.mat", [8], ["model.arch.depth=5"]),
    ("mslapsrn", "MSLapSRN_D5R8.mat", [2, 4, 8, 3], ["model.arch.recursive=8"]),
]
SETS = ("Set5", "Set14")
FIELDS = ("model", "file", "set", "scale", "protocol", "psnr_y", "ssim_y", "seconds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--protocol", default="default", help="a conf/protocol option")
    parser.add_argument("--only", default="", help="comma-separated file names (default: every file found)")
    parser.add_argument("--benchmarks", type=Path, default=REPO / "benchmarks")
    parser.add_argument("--out", type=Path, default=REPO / "experiments/model_zoo/official_weights.csv")
    args = parser.parse_args()
    torch.set_num_threads(1)
    done = set()
    if args.out.is_file():
        with args.out.open() as f:
            done = {(r["file"], r["set"], r["scale"], r["protocol"]) for r in csv.DictReader(f)}
    else:
        args.out.write_text(",".join(FIELDS) + "\n")
    only = {name for name in args.only.split(",") if name}
    protocol = [f"protocol={args.protocol}"]
    if args.protocol in ("default", "gray_as_rgb"):
        protocol.append("benchmarks.matlab=legacy")  # x8: the imresize of the shipped x2/x3/x4 files
    for model, name, scales, extra in JOBS:
        path = args.weights / name
        if only and name not in only:
            continue
        if not path.is_file():
            print(f"skip {name}: not in {args.weights}", flush=True)
            continue
        for scale in scales:
            with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
                cfg = compose("evaluate", overrides=[f"model={model}", f"scale={scale}", f"model.weights={path}",
                                                     *protocol, *extra])
            net = build_eval_model(cfg.model, scale, None)
            suite = build_metric_suite(cfg.metrics)
            for set_name in SETS:
                if (name, set_name, str(scale), args.protocol) in done:
                    continue
                images = load_benchmark_set(args.benchmarks, set_name, scale, **benchmark_options(cfg.benchmarks))
                start = time.perf_counter()
                scores, _ = score_set(net, images, model, set_name, scale, suite)
                seconds = (time.perf_counter() - start) / len(scores)
                row = [model, name, set_name, scale, args.protocol,
                       f"{sum(s.psnr_y for s in scores) / len(scores):.4f}",
                       f"{sum(s.ssim_y for s in scores) / len(scores):.5f}", f"{seconds:.2f}"]
                with args.out.open("a") as f:
                    f.write(",".join(map(str, row)) + "\n")
                print(row, flush=True)


if __name__ == "__main__":
    main()
