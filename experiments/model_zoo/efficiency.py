"""Parameters, GFLOPs and CPU latency of every network in the zoo at x4, for a 256x256 HR output.

    MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000 \\
        .venv/bin/python experiments/model_zoo/efficiency.py [--repeats 5] [--models edsr,rcan] [--out FILE]

Networks are built from the model configs in ``conf/model/`` (the paper settings), so the table describes
exactly what ``python -m src.train model=<m>`` trains. Latency: batch 1, fp32, ``torch.inference_mode``, median
of ``--repeats`` runs after one warm-up, NCHW and ``channels_last`` (the faster one is the one to use).
GFLOPs from ``torch.utils.flop_counter`` (one multiply-add = 2 FLOPs), for the network alone (the bicubic
pre-upsampling of SRCNN/VDSR inputs is not counted).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

import src.config.validation  # noqa: E402,F401  (resolvers)

MODELS = [
    "srcnn", "fsrcnn", "espcn", "vdsr", "edsr_baseline", "edsr", "rcan", "rdn", "msrresnet", "srresnet", "rrdb",
    "srvgg_compact", "carn", "carn_m", "imdn", "lapsrn", "mslapsrn", "wdsr_a", "wdsr_b", "drrn",
]
HR_SIZE = 256
SCALE = 4


def build(model: str) -> tuple[torch.nn.Module, torch.Tensor, str]:
    """The network of ``conf/model/<model>.yaml`` at x4 and an input giving a 256x256 output."""
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        cfg = compose("train", overrides=[f"model={model}", f"scale={SCALE}", "logger=[]"])
    net = instantiate(cfg.model.arch).eval()
    channels = cfg.model.arch.get("num_in_ch", 3)
    side = HR_SIZE if cfg.model.input == "bicubic" else HR_SIZE // SCALE
    return net, torch.rand(1, channels, side, side), f"{cfg.model.input}, {cfg.model.color}"


def latency(net: torch.nn.Module, x: torch.Tensor, repeats: int, channels_last: bool) -> float:
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    else:
        net = net.to(memory_format=torch.contiguous_format)
    times = []
    with torch.inference_mode():
        net(x)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown table here")
    args = parser.parse_args()

    lines = [
        f"x{SCALE}, {HR_SIZE}x{HR_SIZE} HR output, batch 1, fp32; {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}",
        "",
        "| model | input, channel | params | GFLOPs | latency NCHW (ms) | latency channels_last (ms) | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in args.models.split(","):
        net, x, spec = build(model)
        params = sum(p.numel() for p in net.parameters())
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            net(x)
        gflops = counter.get_total_flops() / 1e9
        t_nchw = latency(net, x, args.repeats, channels_last=False)
        t_cl = latency(net, x, args.repeats, channels_last=True)
        lines.append(
            f"| {model} | {spec} | {params / 1e6:.3f}M | {gflops:.1f} | {t_nchw * 1e3:.0f} | {t_cl * 1e3:.0f} "
            f"| {t_nchw / t_cl:.2f}x |"
        )
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    if args.out:
        args.out.write_text(table + "\n")
    print("\n" + table)


if __name__ == "__main__":
    main()
