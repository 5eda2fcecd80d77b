"""LapSRN's published numbers and our default protocol, step by step, with the released LapSRN weights and the
evaluation options of ``python -m src.evaluate`` (``benchmarks.gray`` / ``quantize_lr``, ``metrics.y_rounding`` /
``quantize_sr``; step 4 is ``protocol=lapsrn``).

    OMP_NUM_THREADS=1 nice .venv/bin/python experiments/model_zoo/lapsrn_protocol.py --weights DIR \\
        [--runs Set5:2,Set5:4,Set14:4]

``DIR`` holds ``LapSRN_x<s>.mat`` (phoenix104104/LapSRN ``pretrained_models/``). Steps (each adds one option):

1. ``default``: the shipped 8-bit LR files, SR rounded to 8 bits, MATLAB-rounded Y, a gray ground truth scored gray;
2. ``gray_as_rgb``: Set14's ``bridge.png`` read as RGB (the authors' copy of Set14 holds it as RGB: their
   ``rgb2ycbcr`` call fails on a one-channel image);
3. LR = MATLAB ``imresize`` of the double HR, not rounded (``lr=generate matlab=current quantize_lr=false``), Y
   still rounded: the first released ``test_LapSRN_dataset.m`` (``im2uint8`` then ``rgb2ycbcr`` of the uint8);
4. Y not rounded (``y_rounding=false``) = ``protocol=lapsrn``: the later ``evaluate_LapSRN_dataset.m``
   (``im2double(im2uint8(…))`` then ``rgb2ycbcr`` of the double);
5. the SR not rounded either (``quantize_sr=false``), which no released LapSRN script does.

Printed per set and scale: Y-PSNR / SSIM after each step.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from hydra import compose, initialize_config_dir  # noqa: E402

import src.config.validation  # noqa: E402,F401  (resolvers)
from src.evaluation.benchmark import benchmark_options, load_benchmark_set, score_set  # noqa: E402
from src.methods.loading import build_eval_model  # noqa: E402
from src.metrics.suite import build_metric_suite  # noqa: E402

FLOAT_LR = ["benchmarks.lr=generate", "benchmarks.matlab=current", "benchmarks.quantize_lr=false"]
STEPS = [
    ("default", ["protocol=default"]),
    ("+ gray as RGB", ["protocol=gray_as_rgb"]),
    ("+ LR not rounded", ["protocol=gray_as_rgb", *FLOAT_LR]),
    ("+ Y not rounded (protocol=lapsrn)", ["protocol=lapsrn"]),
    ("+ SR not rounded", ["protocol=lapsrn", "metrics.quantize_sr=false"]),
]


class Memo(torch.nn.Module):
    """The wrapped model, run once per distinct LR tensor (steps that change only the scoring reuse the SR)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.outputs = model, {}

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        key = hashlib.sha1(lr.contiguous().numpy().tobytes()).hexdigest() + str(tuple(lr.shape))
        if key not in self.outputs:
            self.outputs[key] = self.model(lr)
        return self.outputs[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--benchmarks", type=Path, default=REPO / "benchmarks")
    parser.add_argument("--runs", default="Set5:2,Set5:4,Set14:4")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for run in args.runs.split(","):
        set_name, scale = run.split(":")[0], int(run.split(":")[1])
        net = None
        row = []
        for label, overrides in STEPS:
            with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
                cfg = compose("evaluate", overrides=["model=lapsrn", f"scale={scale}",
                                                     f"model.weights={args.weights / f'LapSRN_x{scale}.mat'}",
                                                     *overrides])
            net = net or Memo(build_eval_model(cfg.model, scale, None))
            images = load_benchmark_set(args.benchmarks, set_name, scale, **benchmark_options(cfg.benchmarks))
            with torch.no_grad():
                scores, _ = score_set(net, images, "lapsrn", set_name, scale, build_metric_suite(cfg.metrics))
            psnr = sum(s.psnr_y for s in scores) / len(scores)
            ssim = sum(s.ssim_y for s in scores) / len(scores)
            row.append(f"{label} {psnr:.3f} / {ssim:.4f}")
        print(f"{set_name} x{scale}: " + "; ".join(row), flush=True)


if __name__ == "__main__":
    main()
