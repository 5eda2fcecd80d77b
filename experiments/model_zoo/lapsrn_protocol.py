"""LapSRN's own evaluation protocol (phoenix104104/LapSRN ``evaluate_LapSRN_dataset.m``) next to ours, with the
released LapSRN weights, to show where their published numbers and ours part.

    OMP_NUM_THREADS=1 nice .venv/bin/python experiments/model_zoo/lapsrn_protocol.py --weights DIR \\
        [--runs Set5:2,Set5:4,Set14:4]

The official MATLAB code: HR = im2double(imread) cropped to a multiple of the scale; LR = imresize(HR, 1/s) on the
double image (never rounded to 8 bits); the network sees the Y of ``rgb2ycbcr`` of that double LR (a gray image:
its gray values, no conversion); the PSNR is computed on the double Y (not rounded) with ``s`` px shaved. Ours:
the shipped 8-bit LR files, SR rounded to 8 bits, MATLAB-rounded Y, gray images scored on gray values. Printed
per set and scale: ours, then each of the official steps switched on in turn (float LR, float metric, gray image
fed as gray).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from src.archs import LapSRN  # noqa: E402
from src.data.image_io import list_images, load_image  # noqa: E402
from src.degradations import imresize, modcrop  # noqa: E402
from src.evaluation.benchmark import load_benchmark_set, score_set  # noqa: E402
from src.imaging.colorspace import rgb_to_ycbcr  # noqa: E402
from src.methods.sr_forward import SRForward  # noqa: E402
from src.weights.checkpoints import load_into  # noqa: E402


def psnr_float(a: torch.Tensor, b: torch.Tensor, shave: int) -> float:
    a, b = a[..., shave:-shave, shave:-shave].double(), b[..., shave:-shave, shave:-shave].double()
    return -10 * math.log10(float(((a - b) ** 2).mean()))


def official(net: torch.nn.Module, root: Path, set_name: str, scale: int, quantize_lr: bool, gray_raw: bool) -> float:
    """Y-PSNR as LapSRN's MATLAB test code computes it (optionally with 8-bit LR / gray as Y)."""
    values = []
    for path in list_images(root / set_name / "HR"):
        hr = modcrop(load_image(path), scale)
        gray = hr.shape[0] == 1
        lr = imresize(hr[None], 1 / scale)
        if quantize_lr:
            lr = (lr.clamp(0, 1) * 255).round() / 255
        if gray and gray_raw:
            y_lr, y_hr = lr[:, :1], hr[None]
        else:
            lr3, hr3 = (lr.expand(-1, 3, -1, -1), hr[None].expand(-1, 3, -1, -1)) if gray else (lr, hr[None])
            y_lr, y_hr = rgb_to_ycbcr(lr3)[:, :1], rgb_to_ycbcr(hr3)[:, :1]
        with torch.no_grad():
            y_sr = net(y_lr)
        values.append(psnr_float(y_sr, y_hr, scale))
    return sum(values) / len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--benchmarks", type=Path, default=REPO / "benchmarks")
    parser.add_argument("--runs", default="Set5:2,Set5:4,Set14:4")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for run in args.runs.split(","):
        set_name, scale = run.split(":")[0], int(run.split(":")[1])
        net = LapSRN(upscale=scale, depth=5 if scale == 8 else 10).eval()
        load_into(net, args.weights / f"LapSRN_x{scale}.mat")
        ours, _ = score_set(SRForward(net, scale, color="y").eval(),
                            load_benchmark_set(args.benchmarks, set_name, scale), "lapsrn", set_name, scale)
        row = {"ours": sum(s.psnr_y for s in ours) / len(ours)}
        row["8-bit LR, float metric"] = official(net, args.benchmarks, set_name, scale, True, False)
        row["float LR, float metric"] = official(net, args.benchmarks, set_name, scale, False, False)
        row["float LR, float metric, gray fed raw"] = official(net, args.benchmarks, set_name, scale, False, True)
        print(f"{set_name} x{scale}: " + "; ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
