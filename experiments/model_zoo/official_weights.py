"""Score the official weights of the zoo-II networks on Set5 / Set14 with our ``evaluate`` protocol.

    OMP_NUM_THREADS=1 nice .venv/bin/python experiments/model_zoo/official_weights.py --weights DIR \\
        [--benchmarks benchmarks] [--out experiments/model_zoo/official_weights.csv]

``DIR`` holds the released files under their official names (any subset): ``IMDN_x2/x3/x4.pth``
(Zheng222/IMDN ``checkpoints/``), ``carn.pth`` / ``carn_m.pth`` (nmhkahn/CARN-pytorch ``checkpoint/``),
``LapSRN_x2/x4/x8.mat`` and ``MSLapSRN_D5R<r>.mat`` + ``_opts.mat`` (phoenix104104/LapSRN
``pretrained_models/``). Each is built from ``conf/model/<m>.yaml`` exactly as
``python -m src.evaluate model=<m> model.weights=<file>`` does, and scored with the paper protocol (Y channel,
``scale`` px shaved, MATLAB-bicubic LR: the shipped LR files at x2/x3/x4, generated with the legacy
``imresize`` at x8). Rows are appended to the CSV as they finish (reruns skip finished rows).

``--gray-as-rgb FILE`` instead scores only the gray images of Set14 (``bridge.png``) two ways and writes
``model,file,scale,image,psnr_gray,psnr_rgb_y`` rows: on gray values (our protocol, as the MATLAB test code of
SRCNN/VDSR) and on the Y of the gray image replicated to RGB (what code that reads every image as 3-channel
RGB computes, e.g. IMDN's ``cv2.imread(…, IMREAD_COLOR)``): Y = 16 + 219/255 · gray compresses the error by
219/255, so the PSNR rises by 20·log10(255/219) = 1.32 dB on that image and the Set14 mean by ~1.32/14 dB.
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
from src.evaluation.benchmark import load_benchmark_set, score_set  # noqa: E402
from src.weights.checkpoints import build_eval_model  # noqa: E402

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
FIELDS = ("model", "file", "set", "scale", "psnr_y", "ssim_y", "seconds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--benchmarks", type=Path, default=REPO / "benchmarks")
    parser.add_argument("--out", type=Path, default=REPO / "experiments/model_zoo/official_weights.csv")
    parser.add_argument("--gray-as-rgb", type=Path, default=None, help="score Set14's gray images two ways")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.gray_as_rgb:
        gray_as_rgb(args.weights, args.benchmarks, args.gray_as_rgb)
        return
    done = set()
    if args.out.is_file():
        with args.out.open() as f:
            done = {(r["file"], r["set"], r["scale"]) for r in csv.DictReader(f)}
    else:
        args.out.write_text(",".join(FIELDS) + "\n")
    for model, name, scales, extra in JOBS:
        path = args.weights / name
        if not path.is_file():
            print(f"skip {name}: not in {args.weights}", flush=True)
            continue
        for scale in scales:
            with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
                cfg = compose("evaluate", overrides=[f"model={model}", f"scale={scale}", f"model.weights={path}",
                                                     *extra])
            net = build_eval_model(cfg.model, scale, None)
            for set_name in SETS:
                if (name, set_name, str(scale)) in done:
                    continue
                images = load_benchmark_set(args.benchmarks, set_name, scale, matlab="legacy")
                start = time.perf_counter()
                scores, _ = score_set(net, images, model, set_name, scale)
                seconds = (time.perf_counter() - start) / len(scores)
                row = [model, name, set_name, scale, f"{sum(s.psnr_y for s in scores) / len(scores):.4f}",
                       f"{sum(s.ssim_y for s in scores) / len(scores):.5f}", f"{seconds:.2f}"]
                with args.out.open("a") as f:
                    f.write(",".join(map(str, row)) + "\n")
                print(row, flush=True)


def gray_as_rgb(weights: Path, benchmarks: Path, out: Path) -> None:
    from dataclasses import replace

    out.write_text("model,file,scale,image,psnr_gray,psnr_rgb_y\n")
    for model, name, scales, extra in JOBS:
        path = weights / name
        if not path.is_file():
            continue
        for scale in scales:
            with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
                cfg = compose("evaluate", overrides=[f"model={model}", f"scale={scale}", f"model.weights={path}",
                                                     *extra])
            net = build_eval_model(cfg.model, scale, None)
            gray = [im for im in load_benchmark_set(benchmarks, "Set14", scale, matlab="legacy") if im.hr.shape[0] == 1]
            as_rgb = [replace(im, hr=im.hr.expand(3, -1, -1).clone(), lr=im.lr.expand(3, -1, -1).clone())
                      for im in gray]
            (g,), _ = score_set(net, gray, model, "Set14", scale)
            (c,), _ = score_set(net, as_rgb, model, "Set14", scale)
            with out.open("a") as f:
                f.write(f"{model},{name},{scale},{g.image},{g.psnr_y:.4f},{c.psnr_y:.4f}\n")
            print(model, name, scale, g.image, round(g.psnr_y, 3), round(c.psnr_y, 3), flush=True)


if __name__ == "__main__":
    main()
