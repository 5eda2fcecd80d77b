"""One-command GPU readiness check: ``make gpu-check`` (about 10 minutes on one GPU), ``--cpu`` for the CPU half.

Checks (each one row of a pass/fail table, written to ``experiments/gpu_check/<device name>.md``):

CPU half (also part of a GPU run):
  losses/<name>/<dtype>   every loss: value under autocast equals fp32 within 1e-4 relative, gradient cosine
                          >= 0.999 (bf16 on the CPU; bf16 and fp16 on CUDA)
  determinism/<pipeline>  the same seed gives the same LR batches twice (on the check's device)
  smoke/<model>/<prec>    two training steps of rrdb_gan / esrgan_pro / realesrgan / srgan (small networks on the
                          CPU, full size on a GPU) under bf16-mixed (and 16-mixed on a GPU): every logged loss finite
GPU half (needs CUDA):
  cuda_vs_cpu/imresize    MATLAB imresize, CUDA vs CPU (max |diff|)
  cuda_vs_cpu/<pipeline>  the LR batch of every degradation for the same seed, CUDA vs CPU (Poisson noise off: its
                          fields are drawn on the device); share of 8-bit levels that differ
  syncs/<pipeline>        host-device synchronisations per training batch (torch.cuda.set_sync_debug_mode)
  batch/pinned_transfer   an SRBatch from a pinning DataLoader worker is in page-locked memory, and Lightning's
                          device move puts every tensor on the GPU unchanged (names and training flag kept)
  memory/<net>/<tile>     peak GPU memory of RRDBNet / EDSR x4 inference on a 2040x1356 (DIV2K-size) LR image
  upscale/fp16_vs_fp32    PSNR of fp16 against fp32 output of RRDBNet (random weights; NaN-free)

Usage: ``python experiments/gpu_check/gpu_check.py [--cpu] [--budget SECONDS] [--out FILE]``. Exit status 0 when
every check that ran passed. Checks past the time budget are listed as skipped.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@dataclass
class Row:
    name: str
    status: str  # pass | FAIL | skipped
    detail: str
    seconds: float = 0.0


class Checker:
    def __init__(self, budget: float) -> None:
        self.rows: list[Row] = []
        self.deadline = time.perf_counter() + budget

    def check(self, name: str, fn: Callable[[], tuple[bool, str]]) -> None:
        if time.perf_counter() > self.deadline:
            self.rows.append(Row(name, "skipped", "time budget spent"))
            return
        start = time.perf_counter()
        try:
            ok, detail = fn()
        except Exception as exc:  # noqa: BLE001 - a crashing check is a failed row, the others still run
            ok, detail = False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        row = Row(name, "pass" if ok else "FAIL", detail, time.perf_counter() - start)
        self.rows.append(row)
        print(f"{row.status:7s} {row.name:38s} {row.detail}  ({row.seconds:.1f} s)", flush=True)


# ---- losses under autocast ---------------------------------------------------------------------------------------
def _bind(module, call: Callable) -> Callable:
    return lambda x, t: call(module.to(x.device), x, t)


def _loss_cases() -> dict[str, Callable]:
    from src.losses import (
        CharbonnierLoss,
        GANLoss,
        MixLoss,
        MSSSIMLoss,
        PerceptualLoss,
        PixelLoss,
        RelativisticGANLoss,
        TVLoss,
    )

    torch.manual_seed(0)
    vgg = PerceptualLoss({"conv3_4": 0.5, "conv5_4": 1.0}, style_weight=1.0, weights="random")
    modules = {f"pixel_{c}": PixelLoss(c) for c in ("l1", "mse", "charbonnier")}
    modules |= {"charbonnier": CharbonnierLoss(), "ms_ssim": MSSSIMLoss(), "mix": MixLoss(), "tv": TVLoss()}
    out = {name: _bind(m, lambda m, x, t: m(x, t)) for name, m in modules.items()}
    out["vgg_perceptual"] = _bind(vgg, lambda m, x, t: m(x, t)[0])
    out["vgg_style"] = _bind(vgg, lambda m, x, t: m(x, t)[1])
    for gan in ("vanilla", "lsgan", "hinge", "wgan"):
        out[f"gan_{gan}"] = _bind(GANLoss(gan, 0.1), lambda m, x, t: m(x, True) + m(x, False, is_disc=True))
    out["ragan"] = _bind(RelativisticGANLoss(0.005), lambda m, x, t: m.generator(t, x) + m.discriminator(t, x))
    return out


def check_losses(chk: Checker, device: torch.device, dtypes: list[torch.dtype]) -> None:
    gen = torch.Generator().manual_seed(0)
    base = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 52, 52, generator=gen), 5, 1)
    pred = (base + 0.01 * torch.randn(base.shape, generator=gen)).clamp(0, 1).to(device)
    target = base.to(device)
    for name, fn in _loss_cases().items():
        for dtype in dtypes:
            def run(fn=fn, dtype=dtype) -> tuple[bool, str]:
                def value_grad(enabled: bool):
                    x = pred.clone().requires_grad_(True)
                    with torch.autocast(device.type, dtype=dtype, enabled=enabled):
                        v = fn(x, target)
                    v.backward()
                    return float(v), x.grad.double().flatten()

                v32, g32 = value_grad(False)
                v16, g16 = value_grad(True)
                rel = abs(v16 - v32) / max(abs(v32), 1e-12)
                cos = float(g16 @ g32 / (g16.norm() * g32.norm()))
                return rel <= 1e-4 and cos >= 0.999, f"rel {rel:.1e}, cos {cos:.6f}"

            chk.check(f"losses/{name}/{str(dtype).split('.')[-1]}", run)


# ---- degradations ------------------------------------------------------------------------------------------------
def _pipelines(poisson: bool = True) -> dict[str, Callable]:
    from src.degradations.pipelines import BicubicDegradation, ClassicalDegradation, RealESRGANDegradation

    g = {} if poisson else {"gaussian_noise_prob": 1.0}
    g2 = {} if poisson else {"gaussian_noise_prob2": 1.0}
    return {
        "bicubic": lambda: BicubicDegradation(4),
        "classical": lambda: ClassicalDegradation(4, seed=3, **g),
        "realesrgan": lambda: RealESRGANDegradation(4, seed=3, queue_size=8, **g, **g2),
    }


def _hr_batch(n: int = 4, size: int = 128) -> torch.Tensor:
    from src.data.datasets import load_uint8_rgb
    from src.data.sample_photos import sample_photo_paths

    img = load_uint8_rgb(sample_photo_paths(["astronaut"])[0]).float() / 255
    return torch.stack([img[:, 40 * i:40 * i + size, 60 * i:60 * i + size] for i in range(n)])


def _degrade(make: Callable, hr: torch.Tensor, batches: int = 3) -> list[torch.Tensor]:
    from src.data.batch import SRBatch

    deg = make()
    return [deg(SRBatch(hr=hr, training=True)).lr for _ in range(batches)]


def check_determinism(chk: Checker, device: torch.device) -> None:
    hr = _hr_batch().to(device)
    for name, make in _pipelines().items():
        def run(make=make) -> tuple[bool, str]:
            a, b = _degrade(make, hr), _degrade(make, hr)
            same = all(torch.equal(x, y) for x, y in zip(a, b))
            return same, f"{len(a)} batches {'identical' if same else 'DIFFER'}"

        chk.check(f"determinism/{name}/{device.type}", run)


def check_cuda_vs_cpu(chk: Checker) -> None:
    from src.degradations import imresize

    hr = _hr_batch()

    def resize() -> tuple[bool, str]:
        diff = (imresize(hr.cuda(), 0.25).cpu() - imresize(hr, 0.25)).abs().max().item()
        return diff < 1e-5, f"max |diff| {diff:.1e}"

    chk.check("cuda_vs_cpu/imresize", resize)
    for name, make in _pipelines(poisson=False).items():
        def run(make=make) -> tuple[bool, str]:
            cpu, gpu = _degrade(make, hr), [t.cpu() for t in _degrade(make, hr.cuda())]
            # float rounding differs between devices; a flipped rounding before JPEG quantisation can move a
            # whole 8x8 block, so the criterion is the share of differing values, not the largest difference
            levels = torch.cat([(c - g).abs().flatten() for c, g in zip(cpu, gpu)]) * 255
            differ = float((levels > 0.5).float().mean())
            return differ < 1e-2, f"{differ:.2e} of 8-bit values differ, max {float(levels.max()):.0f} level(s)"

        chk.check(f"cuda_vs_cpu/{name}", run)


def check_syncs(chk: Checker) -> None:
    hr = _hr_batch().cuda()
    for name, make in _pipelines().items():
        def run(make=make) -> tuple[bool, str]:
            from src.data.batch import SRBatch

            deg = make()
            batch = SRBatch(hr=hr, training=True)

            def call():
                return deg(batch)

            call()  # warm-up: caches of resize matrices and constants
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("warn")
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    for _ in range(4):
                        call()
            finally:
                torch.cuda.set_sync_debug_mode(0)
            per_batch = sum("synchroniz" in str(w.message) for w in caught) / 4
            return per_batch == 0, f"{per_batch:.1f} syncs per batch"

        chk.check(f"syncs/{name}", run)


# ---- smoke training --------------------------------------------------------------------------------------------------
SMALL = {
    "rrdb_gan": ["model.arch.num_feat=8", "model.arch.num_block=1", "model.arch.num_grow_ch=4",
                 "model.discriminator.num_feat=8"],
    "esrgan_pro": ["model.arch.num_feat=8", "model.arch.num_block=1", "model.arch.num_grow_ch=4",
                   "model.discriminator.num_feat=8", "data.patch_size=64"],
    "realesrgan": ["model.arch.num_feat=8", "model.arch.num_block=1", "model.arch.num_grow_ch=4",
                   "model.discriminator.num_feat=8", "degradation.queue_size=8", "degradation.usm_radius=5"],
    "srgan": ["model.arch.num_feat=8", "model.arch.num_block=1", "model.discriminator.num_feat=8"],
}


def check_batch_transfer(chk: Checker) -> None:
    from functools import partial

    from lightning.fabric.utilities.apply_func import move_data_to_device
    from torch.utils.data import DataLoader

    from src.data.batch import collate

    items = [{"hr": torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8), "name": f"{i}.png", "index": i}
             for i in range(4)]

    def run() -> tuple[bool, str]:
        loader = DataLoader(items, batch_size=2, num_workers=1, pin_memory=True,
                            collate_fn=partial(collate, training=False))
        batch = next(iter(loader))
        pinned = batch.hr.is_pinned() and batch.indices.is_pinned()
        moved = move_data_to_device(batch, torch.device("cuda")).to_float()
        torch.cuda.synchronize()
        on_gpu = moved.hr.is_cuda and moved.indices.is_cuda
        same = torch.equal(moved.hr.cpu() * 255, batch.hr.float()) and moved.names == ["0.png", "1.png"]
        return pinned and on_gpu and same and not moved.training, f"pinned {pinned}, on GPU {on_gpu}, equal {same}"

    chk.check("batch/pinned_transfer", run)


def check_smoke(chk: Checker, device: torch.device, precisions: list[str], small: bool) -> None:
    import lightning as L
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from src.config.validation import ConfigError

    class Losses(L.Callback):
        def __init__(self) -> None:
            self.values: dict[str, float] = {}

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            for key, value in trainer.callback_metrics.items():
                if key.startswith("train/"):
                    self.values[key] = float(value)

    for model in SMALL:
        for precision in precisions:
            def run(model=model, precision=precision) -> tuple[bool, str]:
                overrides = [f"model={model}", "experiment=smoke", "data.batch_size=2", "logger=[]",
                             *(SMALL[model] if small else [])]
                with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
                    cfg = compose("train", overrides=overrides)
                if cfg.get("loss"):
                    raise ConfigError("unexpected loss preset")
                L.seed_everything(0)
                datamodule = instantiate(cfg.data, degradation=instantiate(cfg.degradation))
                method = instantiate(cfg.model, _recursive_=False)
                losses = Losses()
                trainer = L.Trainer(max_steps=2, accelerator=device.type, devices=1, precision=precision,
                                    logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                    enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                                    log_every_n_steps=1, callbacks=[losses])
                trainer.fit(method, datamodule=datamodule)
                finite = bool(losses.values) and all(math.isfinite(v) for v in losses.values.values())
                shown = ", ".join(f"{k[6:]} {v:.3g}" for k, v in sorted(losses.values.items())[:4])
                return finite, shown

            chk.check(f"smoke/{model}/{precision}", run)


# ---- memory and fp16 inference ---------------------------------------------------------------------------------------
def check_memory_and_fp16(chk: Checker) -> None:
    from src.archs import EDSR, RRDBNet
    from src.inference import tiled_forward
    from src.metrics.fidelity import psnr

    nets = {"rrdbnet": lambda: RRDBNet(3, 3, scale=4), "edsr": lambda: EDSR(3, 3, num_feat=256, num_block=32,
                                                                               res_scale=0.1, upscale=4)}
    lr = torch.rand(1, 3, 1356, 2040, generator=torch.Generator().manual_seed(0))
    for name, make in nets.items():
        for tile in (0, 512):
            def run(make=make, tile=tile) -> tuple[bool, str]:
                net = make().cuda().eval()
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                try:
                    with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
                        out = tiled_forward(net, lr.cuda(), 4, tile, 32, 0, 1, None, "cpu")
                except torch.cuda.OutOfMemoryError:
                    total = torch.cuda.get_device_properties(0).total_memory / 2**30
                    return tile == 0, f"out of memory ({total:.0f} GiB GPU)"
                peak = torch.cuda.max_memory_allocated() / 2**30
                return bool(torch.isfinite(out).all()), f"peak {peak:.2f} GiB (fp16)"

            chk.check(f"memory/{name}/tile{tile}", run)

    def fp16() -> tuple[bool, str]:
        torch.manual_seed(0)
        net = RRDBNet(3, 3, scale=4).cuda().eval()
        x = lr[..., :256, :256].cuda()
        with torch.no_grad():
            ref = net(x).clamp(0, 1)
            with torch.autocast("cuda", dtype=torch.float16):
                half = net(x).float().clamp(0, 1)
        value = float(psnr(half[0].cpu(), ref[0].cpu(), 4, channel="rgb"))
        return bool(torch.isfinite(half).all()) and value > 40, f"PSNR fp16 vs fp32 {value:.1f} dB"

    chk.check("upscale/fp16_vs_fp32", fp16)


# ---- report --------------------------------------------------------------------------------------------------------
def device_name(cpu: bool) -> str:
    if not cpu and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu-{platform.machine()}"


def write_report(rows: list[Row], name: str, out: Path, seconds: float) -> None:
    lines = [f"# GPU check: {name}", "",
             f"torch {torch.__version__}, CUDA {torch.version.cuda}, {platform.platform()}; {seconds:.0f} s "
             f"(`python experiments/gpu_check/gpu_check.py`)", "",
             "| check | result | detail | s |", "|---|---|---|---|"]
    lines += [f"| {r.name} | {r.status} | {r.detail} | {r.seconds:.1f} |" for r in rows]
    counts = {s: sum(r.status == s for r in rows) for s in ("pass", "FAIL", "skipped")}
    lines += ["", f"{counts['pass']} passed, {counts['FAIL']} failed, {counts['skipped']} skipped", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="run the CPU half only (CI)")
    parser.add_argument("--budget", type=float, default=900.0, help="seconds; later checks are skipped")
    parser.add_argument("--out", type=Path, default=None, help="report file (default experiments/gpu_check/<name>.md)")
    args = parser.parse_args(argv)
    if args.budget <= 0:
        parser.error(f"--budget must be positive, got {args.budget}")
    cuda = torch.cuda.is_available() and not args.cpu
    if not args.cpu and not torch.cuda.is_available():
        print("error: no CUDA device; run with --cpu for the CPU half", file=sys.stderr)
        return 2
    start = time.perf_counter()
    chk = Checker(args.budget)
    device = torch.device("cuda" if cuda else "cpu")
    check_losses(chk, device, [torch.bfloat16, torch.float16] if cuda else [torch.bfloat16])
    check_determinism(chk, device)
    if cuda:
        check_cuda_vs_cpu(chk)
        check_syncs(chk)
        check_batch_transfer(chk)
        check_memory_and_fp16(chk)
    check_smoke(chk, device, ["bf16-mixed", "16-mixed"] if cuda else ["bf16-mixed"], small=not cuda)
    name = device_name(args.cpu)
    out = args.out or REPO / "experiments" / "gpu_check" / f"{name.replace(' ', '_').replace('/', '_')}.md"
    write_report(chk.rows, name, out, time.perf_counter() - start)
    failed = [r for r in chk.rows if r.status == "FAIL"]
    print(f"\n{len(chk.rows) - len(failed)} of {len(chk.rows)} checks passed or skipped; report: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
