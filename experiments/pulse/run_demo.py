"""PULSE on held-out faces at x4 and x8 with the small face generator of ``train_generator.py``, next to bicubic and
a supervised network (the official VDSR weights, ``../shared/weights/VDSR_Official.mat``).

For each held-out ``lfw_subset`` face (90-99, 24x24 gray) and scale: LR = MATLAB-bicubic ``imresize(HR, 1/s)``
rounded to 8 bits; then bicubic, VDSR (bicubic-upsampled Y input; trained for x2-x4, so x8 is outside its range) and
PULSE (``src.methods.pulse``, the default search settings: 100 steps, eps 2e-3, up to 3 restarts). Writes into
``--out``: ``results.md`` (PSNR against the HR, downscaling PSNR against the LR input, seconds per image),
``per_image.csv``, ``panel_x4.png`` / ``panel_x8.png`` (LR | bicubic | VDSR | PULSE | HR, 4x nearest-enlarged),
and the benchmark folder ``<bench>/Faces/HR`` that ``run.sh`` scores with ``python -m src.evaluate``.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/pulse/run_demo.py --generator outputs/pulse_demo/generator.pt
"""

from __future__ import annotations

import argparse
import csv
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from experiments.pulse.train_generator import HELD_OUT, lfw_faces  # noqa: E402
from src.data.image_io import save_image  # noqa: E402
from src.degradations import imresize  # noqa: E402
from src.methods.pulse import Pulse, PulseSettings, load_generator  # noqa: E402


def quantize(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0, 1).mul(255).round().div(255)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a.double() - b.double()).square().mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def build_vdsr(weights: Path, scale: int):
    from hydra import compose, initialize_config_dir

    from src.methods.loading import build_eval_model

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("evaluate", overrides=["model=vdsr", f"model.weights={weights}", f"scale={scale}"])
    return build_eval_model(cfg.model, scale, None).eval()


def enlarge(x: torch.Tensor, size: int) -> torch.Tensor:
    """(1, h, w) -> (1, size, size), nearest neighbour."""
    return torch.nn.functional.interpolate(x.unsqueeze(0), size=(size, size), mode="nearest")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", type=Path, required=True)
    parser.add_argument("--vdsr", type=Path, default=REPO.parent / "shared" / "weights" / "VDSR_Official.mat")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--bench", type=Path, default=REPO / "outputs" / "pulse_demo" / "bench")
    parser.add_argument("--scales", type=int, nargs="+", default=[4, 8])
    args = parser.parse_args()
    torch.set_num_threads(1)
    faces = lfw_faces()[list(HELD_OUT)]
    for i, hr in zip(HELD_OUT, faces):
        save_image(hr, args.bench / "Faces" / "HR" / f"lfw{i:03d}.png")
    generator = load_generator(None, args.generator)
    pulse = Pulse(generator, PulseSettings())
    rows, panels = [], {}
    for scale in args.scales:
        vdsr = build_vdsr(args.vdsr, scale) if args.vdsr.is_file() else None
        panel_rows = []
        for i, hr in zip(HELD_OUT, faces):
            lr = quantize(imresize(hr.unsqueeze(0), 1 / scale)[0])
            outputs, seconds = {}, {}
            start = time.perf_counter()
            outputs["bicubic"] = quantize(imresize(lr.unsqueeze(0), float(scale))[0])
            seconds["bicubic"] = time.perf_counter() - start
            if vdsr is not None:
                with torch.no_grad():
                    vdsr(lr.expand(3, -1, -1).unsqueeze(0))  # warm-up
                    start = time.perf_counter()
                    out = vdsr(lr.expand(3, -1, -1).unsqueeze(0))[0].mean(0, keepdim=True)
                seconds["vdsr"] = time.perf_counter() - start
                outputs["vdsr"] = quantize(out)
            result = pulse.search(lr, scale)
            outputs["pulse"], seconds["pulse"] = result.image, result.seconds
            for method, sr in outputs.items():
                down = quantize(imresize(sr.unsqueeze(0), 1 / scale)[0])
                rows.append({"image": f"lfw{i:03d}", "scale": scale, "method": method,
                             "psnr_hr": round(psnr(sr, hr), 3),
                             "psnr_down": round(psnr(down, lr), 3), "seconds": round(seconds[method], 4),
                             "steps": result.total_steps if method == "pulse" else "",
                             "reached_eps": result.reached_eps if method == "pulse" else ""})
            size = hr.shape[-1] * 4
            panel_rows.append(torch.cat([enlarge(x, size) for x in
                                         (lr, *outputs.values(), hr)], dim=-1))
            print(f"x{scale} lfw{i:03d}: PULSE downscaling PSNR {result.psnr:.2f} dB, {result.total_steps} steps, "
                  f"{result.seconds:.2f} s; PSNR vs HR: " +
                  ", ".join(f"{m} {psnr(o, hr):.2f}" for m, o in outputs.items()), flush=True)
        panels[scale] = (torch.cat(panel_rows, dim=-2), list(outputs))
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "per_image.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| method | scale | PSNR vs HR (dB) | downscaling PSNR vs LR (dB) | seconds / image "
             "| PULSE: eps reached |",
             "|---|---|---|---|---|---|"]
    for scale in args.scales:
        for method in panels[scale][1]:
            sel = [r for r in rows if r["scale"] == scale and r["method"] == method]
            mean = {k: float(np.mean([r[k] for r in sel])) for k in ("psnr_hr", "psnr_down", "seconds")}
            reached = f"{sum(bool(r['reached_eps']) for r in sel)}/{len(sel)}" if method == "pulse" else ""
            lines.append(f"| {method} | x{scale} | {mean['psnr_hr']:.2f} | {mean['psnr_down']:.2f} | "
                         f"{mean['seconds']:.4f} | {reached} |")
    machine = f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread (2 shared cores)"
    (args.out / "results.md").write_text(
        f"Held-out lfw_subset faces 90-99 (24x24 gray), mean over {len(HELD_OUT)} images; {machine}.\n\n"
        + "\n".join(lines) + "\n")
    print("\n".join(lines))
    from PIL import Image

    for scale, (panel, methods) in panels.items():
        arr = (panel[0].numpy() * 255).round().astype(np.uint8)
        Image.fromarray(arr).save(args.out / f"panel_x{scale}.png")
        print(f"panel_x{scale}.png columns: LR (nearest) | {' | '.join(methods)} | HR")


if __name__ == "__main__":
    main()
