"""Cut HR images into overlapping sub-images, and precompute MATLAB-bicubic LR folders.

    python -m src.prepare input=datasets/DIV2K/DIV2K_train_HR output=datasets/DIV2K/DIV2K_train_HR_sub
    python -m src.prepare input=… output=… lr_scales=[2,3,4] workers=8
    python -m src.prepare input=datasets/DIV2K/DIV2K_train_HR output=datasets/DIV2K/DIV2K_train_LR_bicubic \\
        subimages=false lr_scales=[2,3,4]          # LR of the whole images only (X2/X3/X4, like the official LR)

The recipe is ESRGAN's / BasicSR's ``extract_subimages``: square crops of ``crop`` pixels every ``step`` pixels
along each axis; when the strip left after the last regular crop is wider than ``thresh`` pixels, one more crop
flush with the border is added, otherwise the strip is dropped. Sub-images are numbered row by row
``<stem>_s001.png, <stem>_s002.png, …`` (PNG, lossless). Images smaller than ``crop`` are left out with a warning.

LR (``lr_scales``): ``X<s>/<name>x<s>.png`` (the official DIV2K LR naming, which ``data=paired_folder`` pairs
with ``<name>.png``) made from ``modcrop(HR, s)`` by :func:`src.degradations.imresize` (MATLAB bicubic,
antialiased, float64) and rounded to uint8 -- of each sub-image (``subimages=true``, into ``lr_output``, default
``<output>_LR_bicubic``) or of each whole image (``subimages=false``, into ``output``).

Resumable: every file is written to a hidden temporary name and renamed into place (a file with the final name
is always complete), and a small JSON marker per source image (``<output>/.prepare/<stem>.json``) is written
after all of that image's files. A rerun skips images whose marker lists every file this run wants (and whose
source file is unchanged), re-checks the others pixel by pixel against the source (keeping correct files
untouched, rewriting missing, truncated or wrong ones) and deletes temporary files left by an interrupted run.
``verify=true`` re-checks completed images too. The crop geometry is recorded in ``<output>/.prepare/
settings.json``; rerunning into the same folder with another geometry is an error. Two runs must not write
into the same folder at the same time.

Keys (``conf/prepare.yaml``; unknown keys are an error): see :class:`PrepareConfig`. The files of one image (recipe,
names, LR pixels, markers) are made by :mod:`src.data.subimages`; this module checks the settings and runs the
images, in worker processes when ``workers`` > 1.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.config.validation import ConfigError, check_keys
from src.data.image_io import list_images
from src.data.subimages import MARKER_DIR, ImagePlan, ImageResult, is_done, process_image, write_json
from src.storage.atomic import TMP_MARK

LEGACY_TMP_TAG = ".prepare-tmp-"  # temporary names of earlier versions (now src.storage.atomic's)


@dataclass
class PrepareConfig:
    """Settings of one preparation run (the CLI keys).

    Attributes:
        input: folder of HR images (not recursive).
        output: sub-image folder (``subimages=true``) or LR root folder (``subimages=false``); also holds the
            resume markers in ``.prepare/``.
        crop: sub-image side in pixels (ESRGAN: 480).
        step: distance between neighbouring crops (ESRGAN: 240, i.e. 50% overlap); at most ``crop``.
        thresh: a leftover strip wider than this gets a crop flush with the border; narrower ones are dropped
            (ESRGAN: 48). Must be smaller than ``step`` (leftovers are always narrower than ``step``).
        subimages: cut sub-images (``false``: only the LR of the whole images, needs ``lr_scales``).
        lr_scales: scales of the MATLAB-bicubic LR folders to make (``[]``: none).
        lr_output: root of the ``X<s>`` folders; default ``<output>_LR_bicubic`` with sub-images, ``output``
            without.
        workers: worker processes (0 or 1: work in this process).
        compress: PNG compression level 0-9 (lossless at every level; 3 is BasicSR's and fast to write).
        verify: re-check the files of images that a previous run completed, pixel by pixel.
        progress: show a progress bar.
    """

    input: str | None = None
    output: str | None = None
    crop: int = 480
    step: int = 240
    thresh: int = 48
    subimages: bool = True
    lr_scales: list[int] = field(default_factory=list)
    lr_output: str | None = None
    workers: int = 2
    compress: int = 3
    verify: bool = False
    progress: bool = True


# ------------------------------------------------------------------------------------------------------------
# configuration
def _check_config(cfg: PrepareConfig) -> PrepareConfig:
    """Check values and fill defaults; raises ValueError / FileNotFoundError with the key in the message."""
    if not cfg.input:
        raise ConfigError("input=<folder of HR images> is required")
    if not cfg.output:
        raise ConfigError("output=<folder> is required")
    for key in ("crop", "step", "thresh", "workers", "compress"):
        value = getattr(cfg, key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
    scales = cfg.lr_scales
    if isinstance(scales, int) and not isinstance(scales, bool):
        scales = [scales]
    if not isinstance(scales, (list, tuple)) or any(isinstance(s, bool) or not isinstance(s, int) for s in scales):
        raise ConfigError(f"lr_scales must be a list of integers such as [2,3,4], got {cfg.lr_scales!r}")
    if any(s < 2 for s in scales):
        raise ConfigError(f"lr_scales={list(scales)}: every scale must be an integer >= 2")
    scales = sorted(set(scales))
    if cfg.subimages:
        if cfg.crop < 1:
            raise ConfigError(f"crop={cfg.crop} must be a positive number of pixels")
        if not 1 <= cfg.step <= cfg.crop:
            raise ConfigError(
                f"step={cfg.step} must be between 1 and crop={cfg.crop} (a larger step leaves pixels out of "
                "every sub-image)"
            )
        if not 0 <= cfg.thresh < cfg.step:
            raise ConfigError(
                f"thresh={cfg.thresh} must be >= 0 and smaller than step={cfg.step}: the strip left after the "
                "last regular crop is always narrower than step, so a larger thresh would never add the border crop"
            )
        for s in scales:
            if cfg.crop < s:
                raise ConfigError(f"crop={cfg.crop} is smaller than the LR scale {s}")
    elif not scales:
        raise ConfigError("subimages=false makes only LR folders: give lr_scales=[…] (e.g. [2,3,4])")
    if cfg.workers < 0:
        raise ConfigError(f"workers={cfg.workers} must be >= 0")
    if not 0 <= cfg.compress <= 9:
        raise ConfigError(f"compress={cfg.compress} must be a PNG compression level 0-9")

    source = Path(cfg.input).expanduser()
    if not source.is_dir():
        raise FileNotFoundError(f"input: folder not found: {source.resolve()}")
    output = Path(cfg.output).expanduser()
    if output.resolve() == source.resolve():
        raise ConfigError("output must be a different folder from input")
    lr_output = cfg.lr_output
    if lr_output is None:
        lr_output = str(output.parent / f"{output.name}_LR_bicubic") if cfg.subimages else str(output)
    return dataclasses.replace(
        cfg, input=str(source), output=str(output), lr_scales=scales, lr_output=str(Path(lr_output).expanduser())
    )


_BOOLS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}


def config_from(node: DictConfig | dict) -> PrepareConfig:
    """The composed ``conf/prepare.yaml`` -> :class:`PrepareConfig`; unknown keys and non-boolean switches are
    errors (``yes``/``no``/``1``/``0`` are read as booleans). The other values are checked by :func:`prepare`."""
    if isinstance(node, DictConfig):
        values = OmegaConf.to_container(node, resolve=True)
        values.update({k: None for k in node if OmegaConf.is_missing(node, k)})  # input=??? -> "is required"
    else:
        values = dict(node)
    fields = {f.name for f in dataclasses.fields(PrepareConfig)}
    check_keys(values, "prepare", fields, "python -m src.prepare")
    for key in ("subimages", "verify", "progress"):
        value = values.get(key)
        if key in values and not isinstance(value, bool):
            text = str(value).lower()
            if isinstance(value, float) or text not in _BOOLS:
                raise ConfigError(f"{key} must be true or false, got {value!r}")
            values[key] = _BOOLS[text]
    for key in ("input", "output", "lr_output"):
        if values.get(key) is not None:
            values[key] = str(values[key])
    return PrepareConfig(**values)


# ------------------------------------------------------------------------------------------------------------
# the run
def remove_temp_files(folders: Sequence[Path]) -> int:
    """Delete temporary files that an interrupted run left in ``folders``; returns how many."""
    removed = 0
    for folder in folders:
        if folder.is_dir():
            for path in folder.iterdir():
                temp = TMP_MARK in path.name or LEGACY_TMP_TAG in path.name
                if path.name.startswith(".") and temp and path.is_file():
                    path.unlink()
                    removed += 1
    return removed


def _init_worker(parent: int | None = None) -> None:
    import torch

    torch.set_num_threads(1)
    if parent is not None:
        import threading

        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int, interval: float = 0.5) -> None:
    """A worker ends itself once its parent is gone (killed, even with SIGKILL): no orphan holding ~1 GB."""
    while True:
        time.sleep(interval)
        if os.getppid() != parent:
            os._exit(1)


def _check_settings(cfg: PrepareConfig) -> None:
    """Record the crop geometry in the output folder; refuse to mix geometries in one folder."""
    path = Path(cfg.output) / MARKER_DIR / "settings.json"
    geometry = {"subimages": cfg.subimages}
    if cfg.subimages:
        geometry.update(crop=cfg.crop, step=cfg.step, thresh=cfg.thresh)
    if path.is_file():
        try:
            recorded = json.loads(path.read_text())
        except ValueError:
            recorded = None
        if recorded is not None and recorded != geometry:
            old = " ".join(f"{k}={v}" for k, v in recorded.items())
            new = " ".join(f"{k}={v}" for k, v in geometry.items())
            raise ConfigError(
                f"{cfg.output} was prepared with {old}; this run asks for {new}. Use another output folder, "
                "or delete that one to start over"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(geometry, path)


def _run_jobs(plans: list[ImagePlan], workers: int) -> Iterator[ImageResult]:
    if workers <= 1:
        for plan in plans:
            yield process_image(plan)
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold torch threads
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(os.getpid(),))
    pending: set[Future] = set()
    queue = iter(plans)
    try:
        for plan in queue:  # keep a bounded number of tasks in flight
            pending.add(pool.submit(process_image, plan))
            if len(pending) >= 4 * workers:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(pool.submit(process_image, nxt))
    except BaseException:
        # interrupted (Ctrl-C, SIGTERM) or failed: stop the workers now instead of letting them finish their
        # images; their temporary files are removed by the next run
        pool.shutdown(wait=False, cancel_futures=True)
        for child in multiprocessing.active_children():
            child.terminate()
        raise
    pool.shutdown(wait=True)


def prepare(cfg: PrepareConfig) -> dict:
    """Run a preparation; returns a summary dict (also printed). See the module docstring."""
    cfg = _check_config(cfg)
    source, output, lr_root = Path(cfg.input), Path(cfg.output), Path(cfg.lr_output)
    images = list_images(source)
    if not images:
        raise FileNotFoundError(f"input: no image files (png/jpg/bmp/tif/webp) in {source.resolve()}")
    stems: dict[str, Path] = {}
    for p in images:
        if p.stem in stems:
            raise ValueError(f"input: {stems[p.stem].name} and {p.name} would give the same output names")
        stems[p.stem] = p

    output.mkdir(parents=True, exist_ok=True)
    _check_settings(cfg)
    lr_dirs = [lr_root / f"X{s}" for s in cfg.lr_scales]
    for d in lr_dirs:
        d.mkdir(parents=True, exist_ok=True)
    removed = remove_temp_files([output, output / MARKER_DIR, *lr_dirs])

    plans = [
        ImagePlan(str(p), p.stem, str(output), str(lr_root), cfg.crop, cfg.step, cfg.thresh, cfg.subimages,
              list(cfg.lr_scales), cfg.compress)
        for p in images
    ]  # fmt: skip
    start = time.perf_counter()
    results: list[ImageResult] = []
    todo = []
    for plan in plans:
        if not cfg.verify and is_done(plan):
            results.append(ImageResult(plan.stem, resumed=True))
        else:
            todo.append(plan)

    progress = None
    if cfg.progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(
            TextColumn("[bold]prepare[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("images · {task.fields[files]} files"),
            TimeRemainingColumn(elapsed_when_finished=True),
        )
        progress.start()
        task = progress.add_task(source.name, total=len(plans), completed=len(results), files=0)
    try:
        n_files = 0
        for res in _run_jobs(todo, cfg.workers):
            results.append(res)
            n_files += res.written + res.kept
            if progress is not None:
                progress.update(task, advance=1, files=n_files)
    finally:
        if progress is not None:
            progress.stop()

    failed = [r.error for r in results if r.error]
    too_small = sorted(r.stem for r in results if r.too_small)
    summary = {
        "images": len(plans),
        "resumed": sum(r.resumed for r in results),
        "processed": sum(not r.resumed for r in results),
        "written": sum(r.written for r in results),
        "kept": sum(r.kept for r in results),
        "too_small": too_small,
        "temp_removed": removed,
        "failed": len(failed),
        "seconds": round(time.perf_counter() - start, 2),
        "output": str(output),
        "lr_output": str(lr_root) if cfg.lr_scales else None,
    }
    if too_small:
        print(
            f"prepare: warning: {len(too_small)} image(s) smaller than crop={cfg.crop} gave no sub-image: "
            + ", ".join(too_small[:10])
            + (" …" if len(too_small) > 10 else ""),
            file=sys.stderr,
        )
    print(
        f"prepare: {summary['images']} images ({summary['resumed']} already done, {summary['processed']} processed): "
        f"{summary['written']} files written, {summary['kept']} verified and kept, "
        f"{removed} temporary files removed, {summary['seconds']} s -> {output}"
        + (f" (LR: {lr_root}/X{{{','.join(map(str, cfg.lr_scales))}}})" if cfg.lr_scales else "")
    )
    if failed:
        raise ValueError(
            f"{len(failed)} image(s) failed (the others are done; rerun to retry):\n  " + "\n  ".join(failed[:20])
        )
    return summary


def run_prepare(cfg: DictConfig | dict) -> dict:
    """The job of ``python -m src.prepare`` (``cfg``: the composed ``conf/prepare.yaml``): :func:`prepare`, with
    SIGTERM (SLURM preemption, ``kill``) handled as Ctrl-C: finished files are kept, exit status 130."""
    settings = config_from(cfg)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return prepare(settings)
    except KeyboardInterrupt:
        print("\nprepare: interrupted; finished files are kept: rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt

