"""Peak memory (RSS) of ``python -m src.upscale`` on a 2000x2000 input, whole image vs tiles.

Each measurement runs in a fresh child process (so that peaks do not carry over) and reads the kernel's
high-water mark ``VmHWM`` from ``/proc/self/status``. Two modes:

* ``network``: ``tiled_forward`` on an in-memory LR tensor (what tiling bounds: activations + the output buffer);
* ``cli``: the whole ``src.inference.upscale.upscale`` pipeline (read PNG, network, write PNG), composed from
  ``conf/upscale.yaml`` exactly as ``python -m src.upscale`` does.

The network is ESPCN x4 (RGB, 64/32 filters, random weights written with ``export_basicsr``): small enough to
run a 2000x2000 image whole on a CPU. Usage (from the repository root)::

    OMP_NUM_THREADS=1 .venv/bin/python experiments/upscale/measure_memory.py            # tiles 0 256 512
    OMP_NUM_THREADS=1 .venv/bin/python experiments/upscale/measure_memory.py --tiles 0 128 --size 1000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def prepare(workdir: Path, size: int, scale: int) -> tuple[Path, Path]:
    """A smooth-plus-texture size x size RGB PNG and an ESPCN x<scale> weights file."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from src.archs import ESPCN
    from src.weights.checkpoints import export_basicsr

    image = workdir / f"input_{size}.png"
    if not image.exists():
        g = torch.Generator().manual_seed(0)
        coarse = torch.rand(1, 3, size // 16, size // 16, generator=g)
        img = 0.8 * F.interpolate(coarse, size=(size, size), mode="bicubic") + 0.2 * torch.rand(1, 3, size, size,
                                                                                                 generator=g)
        arr = (img[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(arr).save(image)
    weights = workdir / f"espcn_x{scale}.pth"
    if not weights.exists():
        torch.manual_seed(0)
        export_basicsr(ESPCN(3, 3, upscale=scale).state_dict(), weights)
    return image, weights


def child(args: argparse.Namespace) -> dict:
    import torch

    from src.data.image_io import load_image

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    image, weights = Path(args.image), Path(args.weights)
    overrides = [
        f"input={image}", f"output={args.out}", "model=espcn", "model.color=rgb", f"model.weights={weights}",
        f"scale={args.scale}", f"tile={args.tile}", f"tile_overlap={args.overlap}", "overwrite=true",
        "progress=false", "device=cpu",
    ]
    from hydra import compose, initialize_config_dir

    import src.config.validation  # noqa: F401  (resolvers)

    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        cfg = compose("upscale", overrides=overrides)
    result = {"mode": args.mode, "tile": args.tile, "overlap": args.overlap, "size": args.size, "scale": args.scale}
    if args.mode == "network":
        from src.inference import tiled_forward
        from src.methods.loading import build_eval_model

        cfg.scale = args.scale
        model = build_eval_model(cfg.model, args.scale, None).eval()
        lr = load_image(image).unsqueeze(0)
        base = _status_kib("VmRSS")
        start = time.perf_counter()
        with torch.inference_mode():
            out = tiled_forward(model, lr, args.scale, args.tile, args.overlap)
        result["seconds"] = round(time.perf_counter() - start, 2)
        result["output_shape"] = list(out.shape)
    else:
        from src.inference.upscale import upscale

        base = _status_kib("VmRSS")
        start = time.perf_counter()
        upscale(cfg)
        result["seconds"] = round(time.perf_counter() - start, 2)
    result["rss_before_mib"] = _mib(base)
    result["peak_rss_mib"] = _mib(_status_kib("VmHWM"))
    result["peak_above_start_mib"] = round(result["peak_rss_mib"] - result["rss_before_mib"], 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiles", type=int, nargs="+", default=[0, 256, 512])
    parser.add_argument("--modes", nargs="+", default=["network", "cli"], choices=["network", "cli"])
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--workdir", type=Path, default=None, help="where the input, weights and outputs go")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    # child-only arguments
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="network", help=argparse.SUPPRESS)
    parser.add_argument("--tile", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args)))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="upscale_mem_"))
    workdir.mkdir(parents=True, exist_ok=True)
    image, weights = prepare(workdir, args.size, args.scale)
    import torch

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    print(f"# {cpu}, {os.cpu_count()} cores visible, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"torch {torch.__version__}, python {platform.python_version()}")
    print(f"# input {args.size}x{args.size} RGB -> x{args.scale}, ESPCN (rgb, 64/32 filters), overlap {args.overlap}")
    results = []
    for mode in args.modes:
        for tile in args.tiles:
            cmd = [sys.executable, __file__, "--child", "--mode", mode, "--tile", str(tile), "--size", str(args.size),
                   "--scale", str(args.scale), "--overlap", str(args.overlap), "--image", str(image),
                   "--weights", str(weights), "--out", str(workdir / f"out_{mode}_{tile}")]
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not lines:
                sys.exit(f"child failed ({mode}, tile={tile}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
            results.append(json.loads(lines[-1][len("RESULT "):]))
            r = results[-1]
            print(f"{mode:8s} tile={tile:<4d} peak RSS {r['peak_rss_mib']:8.1f} MiB "
                  f"(+{r['peak_above_start_mib']:.1f} MiB over {r['rss_before_mib']:.1f} MiB at start), "
                  f"{r['seconds']:.1f} s", flush=True)
    print("\n| mode | tile | peak RSS (MiB) | peak − RSS at start (MiB) | time (s) |\n|---|---|---|---|---|")
    for r in results:
        tile = "0 (whole image)" if r["tile"] == 0 else str(r["tile"])
        print(f"| {r['mode']} | {tile} | {r['peak_rss_mib']:.0f} | {r['peak_above_start_mib']:.0f} | "
              f"{r['seconds']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
