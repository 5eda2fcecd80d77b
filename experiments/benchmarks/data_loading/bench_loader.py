"""Images/s of the training DataModule (decode + random 128 px crop + flips/rot90 -> uint8 batches of 16).

    OMP_NUM_THREADS=1 .venv/bin/python experiments/benchmarks/data_loading/bench_loader.py \\
        [--data ../shared/data] [--work /tmp/srsuite_bench_loader] [--only shared|2k] [--out results.md]

Sources:
* ``shared``: T91 + BSD200 (``../shared/data``) through ``src.data.FolderDataModule`` with ``val_fraction=0.1``,
  from the original files and from sub-images made by ``python -m src.prepare`` (crop 240, step 120,
  thresh 24: ESRGAN's recipe halved, because these images are only ~481x321).
* ``2k``: a DIV2K-sized stand-in (DIV2K itself is not on this machine): 1924x1284 PNG mosaics of 4x4 BSD200
  photos (12 images), from the originals and from sub-images with ESRGAN's numbers (crop 480, step 240,
  thresh 48).

Each configuration builds a fresh DataModule and loader (the DataModule's own loader arguments, except that a
``RandomSampler(num_samples=N)`` fixes the epoch length and ``persistent_workers`` / ``pin_memory`` are set per
row) and times ``--epochs`` epochs; the first epoch includes starting the worker processes. Files are read from
the page cache (every source is read once before timing).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, RandomSampler

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from src.data import FolderDataModule  # noqa: E402
from src.data.datasets import load_uint8_rgb  # noqa: E402
from src.data.image_io import list_images  # noqa: E402
from src.data.prepare import PrepareConfig, prepare  # noqa: E402

PATCH, BATCH = 128, 16


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    return (
        f"{datetime.date.today()}, {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"Pillow {Image.__version__}, Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}"
    )


def make_mosaics(bsd: Path, out: Path, n: int = 12) -> Path:
    """1924x1284 mosaics of 4x4 BSD200 photos (portrait photos transposed), PNG at Pillow's default level."""
    out.mkdir(parents=True, exist_ok=True)
    files = list_images(bsd)
    if len(list_images(out)) == n:
        return out
    for m in range(n):
        tiles = []
        for f in files[16 * m : 16 * m + 16]:
            a = np.asarray(Image.open(f).convert("RGB"))
            tiles.append(a if a.shape[0] < a.shape[1] else a.transpose(1, 0, 2))
        rows = [np.concatenate([t[:321, :481] for t in tiles[4 * r : 4 * r + 4]], axis=1) for r in range(4)]
        Image.fromarray(np.concatenate(rows, axis=0)).save(out / f"m{m:02d}.png")
    return out


def prep(src: Path, out: Path, crop: int, step: int, thresh: int) -> dict:
    return prepare(PrepareConfig(input=str(src), output=str(out), crop=crop, step=step, thresh=thresh, workers=2,
                                 progress=False))  # fmt: skip


def decode_costs(paths: dict[str, Path], repeats: int = 7) -> list[tuple[str, str, int, float, float]]:
    """(what, size, file KiB, ms PIL decode to uint8, ms load_uint8_rgb as the loader does it), medians."""
    rows = []
    for what, path in paths.items():
        t_pil, t_ours = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            with Image.open(path) as img:
                arr = np.asarray(img.convert("RGB"))
            t1 = time.perf_counter()
            load_uint8_rgb(path)
            t2 = time.perf_counter()
            t_pil.append(t1 - t0)
            t_ours.append(t2 - t1)
        size = f"{arr.shape[1]}x{arr.shape[0]}"
        kib = path.stat().st_size // 1024
        rows.append((what, size, kib, 1e3 * np.median(t_pil), 1e3 * np.median(t_ours)))
    return rows


def png_level_variants(src: Path, work: Path) -> dict[str, Path]:
    """The same sub-image written at PNG compression levels 0, 1 and 9 (the tool writes level 3)."""
    work.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(Image.open(src).convert("RGB"))
    out = {}
    for level in (0, 1, 9):
        path = work / f"{src.stem}_level{level}.png"
        if not path.exists():
            Image.fromarray(arr).save(path, compress_level=level)
        out[f"2K stand-in sub-image, PNG level {level}"] = path
    return out


def _cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished (joined) child processes."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(dirs: list[Path], workers: int, cache: bool, persistent: bool, pin: bool, samples: int, epochs: int):
    """Images/s of each epoch, seconds to the first batch of epoch 1, training files, and the CPU milliseconds
    spent per image by all processes (main + workers, worker start-up included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small T91 images left out; pin_memory without CUDA
        dm = FolderDataModule(
            train_dirs=[str(d) for d in dirs], val_fraction=0.1, scale=4, patch_size=PATCH, batch_size=BATCH,
            num_workers=workers, repeat=1, cache=cache,
        )  # fmt: skip
        dm.setup("fit")
        ref = dm.train_dataloader()  # the DataModule's own arguments; only the knobs below differ
        loader = DataLoader(
            ref.dataset, batch_size=ref.batch_size, sampler=RandomSampler(ref.dataset, num_samples=samples),
            drop_last=ref.drop_last, num_workers=workers, pin_memory=pin, persistent_workers=persistent and workers > 0,
            collate_fn=ref.collate_fn,
        )  # fmt: skip
        rates, first, total = [], None, 0
        cpu0 = _cpu_seconds()
        for _ in range(epochs):
            n, t0 = 0, time.perf_counter()
            for batch in loader:
                if first is None:
                    first = time.perf_counter() - t0
                assert batch.hr.dtype == torch.uint8 and batch.hr.shape[1:] == (3, PATCH, PATCH)
                n += len(batch)
            rates.append(n / (time.perf_counter() - t0))
            total += n
        del loader  # joins persistent workers, so that their CPU time is counted
    return rates, first, len(ref.dataset), 1e3 * (_cpu_seconds() - cpu0) / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--work", default="/tmp/srsuite_bench_loader")
    ap.add_argument("--only", choices=["shared", "2k"], default=None)
    ap.add_argument("--out", default=None, help="also write the Markdown tables to this file")
    args = ap.parse_args()
    data, work = Path(args.data), Path(args.work)
    lines = [f"Machine: {machine()}", ""]

    def emit(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    # ---- sources -----------------------------------------------------------------------------------------
    t91, bsd = data / "T91", data / "BSD200"
    t0 = time.perf_counter()
    prep(t91, work / "T91_sub240", 240, 120, 24)
    prep(bsd, work / "BSD200_sub240", 240, 120, 24)
    small = sum(min(Image.open(p).size) < 240 for p in list_images(t91))
    n_sub = len(list_images(work / "T91_sub240")) + len(list_images(work / "BSD200_sub240"))
    emit(
        f"prepare T91+BSD200 (crop 240/120/24, workers=2): {time.perf_counter() - t0:.1f} s, "
        f"{n_sub} sub-images ({small} T91 images smaller than 240 px give none)"
    )
    mosaics = make_mosaics(bsd, work / "mosaic2k")
    t0 = time.perf_counter()
    prep(mosaics, work / "mosaic2k_sub480", 480, 240, 48)
    emit(
        f"prepare 2K stand-in (crop 480/240/48, workers=2): {time.perf_counter() - t0:.1f} s, "
        f"{len(list_images(work / 'mosaic2k_sub480'))} sub-images from {len(list_images(mosaics))} images"
    )
    for folder in (t91, bsd, work / "T91_sub240", work / "BSD200_sub240", mosaics, work / "mosaic2k_sub480"):
        for p in list_images(folder):
            p.read_bytes()  # page cache

    emit()
    emit("Decode cost per file (ms, median of 7; one process):")
    emit()
    emit("| file | size | KiB | PIL decode -> uint8 | `load_uint8_rgb` (what the loader calls) |")
    emit("|---|---|---|---|---|")
    sub480 = list_images(work / "mosaic2k_sub480")[7]
    for what, size, kib, a, b in decode_costs({
        "BSD200 original": list_images(bsd)[0],
        "BSD200 sub-image": list_images(work / "BSD200_sub240")[0],
        "2K stand-in original": list_images(mosaics)[0],
        "2K stand-in sub-image (PNG level 3)": sub480,
        **png_level_variants(sub480, work / "png_levels"),
    }):  # fmt: skip
        emit(f"| {what} | {size} | {kib} | {a:.1f} | {b:.1f} |")

    shared = {"originals": [t91, bsd], "sub-images 240": [work / "T91_sub240", work / "BSD200_sub240"]}
    k2 = {"originals": [mosaics], "sub-images 480": [work / "mosaic2k_sub480"]}
    # (source label, dirs, workers, cache, persistent, pin, samples per epoch, epochs)
    configs = []
    if args.only in (None, "shared"):
        for label, dirs in shared.items():
            for w in (0, 1, 2):
                configs.append((f"shared {label}", dirs, w, False, True, False, 512, 2))
        for w in (0, 2):
            configs.append(("shared originals", shared["originals"], w, True, True, False, 512, 3))
        configs.append(("shared originals", shared["originals"], 2, True, False, False, 512, 3))
        configs.append(("shared originals", shared["originals"], 2, False, True, True, 512, 2))
    if args.only in (None, "2k"):
        for label, dirs in k2.items():
            for w in (0, 1, 2):
                configs.append((f"2K {label}", dirs, w, False, True, False, 128 if label == "originals" else 512, 2))
        configs.append(("2K originals", k2["originals"], 2, True, True, False, 128, 3))

    emit()
    emit(f"DataModule throughput, batch {BATCH} x {PATCH}x{PATCH} uint8 HR patches (images/s = patches/s):")
    emit()
    emit(
        "| source | train files | workers | cache | persistent | pin_memory | samples/epoch | first batch (s) "
        "| epoch 1 | epoch 2 | epoch 3 | CPU ms/image |"
    )
    emit("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, dirs, w, cache, persistent, pin, samples, epochs in configs:
        rates, first, n, cpu_ms = run(dirs, w, cache, persistent, pin, samples, epochs)
        cells = [f"{r:.0f}" for r in rates] + ["–"] * (3 - len(rates)) + [f"{cpu_ms:.1f}"]
        emit(f"| {label} | {n} | {w} | {'on' if cache else 'off'} | {'on' if persistent and w else 'off'} "
             f"| {'on' if pin else 'off'} | {samples} | {first:.2f} | " + " | ".join(cells) + " |")  # fmt: skip
    emit()
    emit(f"Load average at the end: {os.getloadavg()[0]:.2f}")
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
