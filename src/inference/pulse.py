"""PULSE upsampling of LR image files, as ``python -m src.pulse`` runs it (settings: ``conf/pulse.yaml``; the
latent search itself is :mod:`src.methods.pulse`).

Per image: read it (converted to the generator's channels), search, then write ``<stem>_pulse.png`` (HR),
``<stem>_pulse_lr.png`` (its downscaled version) and ``<stem>_pulse_log.csv`` (one row per step), each written
atomically (:mod:`src.storage.atomic`); print the downscaling PSNR against the input, the steps and the seconds;
``pulse_results.csv`` gathers the rows. An image that fails (unreadable, wrong size) is reported and the others are
still done; the run then ends with one ``error:`` line naming every failed file (exit status 2).
"""

from __future__ import annotations

import copy
import csv
import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from src.config.schema import GeneratorConfig, PulseConfig, keys_of
from src.config.validation import ConfigError, check_keys, validate
from src.storage.atomic import atomic_write

log = logging.getLogger(__name__)

SUFFIXES = ("_pulse.png", "_pulse_lr.png", "_pulse_log.csv")
RESULT_FIELDS = ("image", "scale", "psnr_down", "mse_down", "reached_eps", "steps", "total_steps", "restart",
                 "seconds", "error")


def check_settings(cfg: DictConfig):
    """Validate the composed config before anything is loaded; returns the :class:`PulseSettings`."""
    from src.methods.pulse import PulseSettings

    # scale goes beyond the suite's usual 16 (the paper upsamples x64): checked here, not by the shared table
    checked = copy.deepcopy(cfg)
    checked.scale = None
    validate(checked, PulseConfig, trainer_key=None)
    check_keys(cfg.generator, "generator", keys_of(GeneratorConfig), "the generator settings")
    for key in ("input", "output"):
        if OmegaConf.is_missing(cfg, key) or cfg[key] in (None, ""):
            raise ConfigError(f"{key}=… is required. usage: python -m src.pulse input=<LR file|folder|glob> "
                              "output=<dir> generator=<name> generator.weights=<file>")
    if cfg.scale is not None and (isinstance(cfg.scale, bool) or not isinstance(cfg.scale, int) or cfg.scale < 1):
        raise ConfigError(f"scale={cfg.scale!r}: expected an integer >= 1 or null (from the generator's resolution)")
    if not isinstance(cfg.overwrite, bool):
        raise ConfigError(f"overwrite={cfg.overwrite!r}: expected true or false")
    return PulseSettings.from_config(OmegaConf.to_container(cfg.search, resolve=True), "search")


def _write_rows(path: Path, rows: list[dict], fields) -> None:
    with atomic_write(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)


def read_lr(path: Path, channels: int) -> torch.Tensor:
    """An LR image as (channels, h, w) in [0, 1]: gray files are repeated for RGB generators, RGB files become
    BT.601 luma for gray generators."""
    from src.data.image_io import load_image
    from src.methods.pulse import _to_channels

    image = load_image(path)
    return _to_channels(image.unsqueeze(0), channels)[0]


def run_pulse(cfg: DictConfig) -> list[dict]:
    """Run ``python -m src.pulse`` (see the module docstring); returns one result row per image."""
    from src.data.image_io import save_image
    from src.inference.image_files import resolve_inputs
    from src.inference.upscale import pick_device
    from src.methods.pulse import Pulse, load_generator

    settings = check_settings(cfg)
    inputs = resolve_inputs(cfg.input)
    out_dir = Path(str(cfg.output)).expanduser()
    planned = {src: [out_dir / f"{src.stem}{suffix}" for suffix in SUFFIXES] for src in inputs}
    stems: dict[str, Path] = {}
    for src in inputs:
        if src.stem in stems:
            raise ValueError(f"{stems[src.stem]} and {src} would both be written as {src.stem}_pulse.png: "
                             "run them separately")
        stems[src.stem] = src
    existing = [p for files in planned.values() for p in files if p.exists()]
    if existing and not cfg.overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise FileExistsError(f"output file {existing[0]} already exists{more}: pass overwrite=true to replace it")
    device = pick_device(str(cfg.device))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={cfg.device}: no CUDA device is available here")
    generator = load_generator(cfg.generator.arch, cfg.generator.weights).to(device)
    pulse = Pulse(generator, settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info("PULSE with %s (%dx%d, %d latent(s) of %d) on %s: %d image(s) -> %s", type(generator).__name__,
             *generator.resolution, generator.num_latents, generator.latent_dim, device, len(inputs), out_dir)
    rows, failed = [], []
    for src in inputs:
        hr_path, lr_path, log_path = planned[src]
        try:
            lr = read_lr(src, int(generator.channels))
            scale = pulse.check_input(lr, cfg.scale)
            result = pulse.search(lr, scale)
            save_image(result.image, hr_path)  # atomic (src.storage.atomic)
            save_image(result.downscaled, lr_path)
            _write_rows(log_path, result.log, ("restart", "step", "lr", "loss", "mse", "geocross"))
        except Exception as exc:  # noqa: BLE001 - reported per image; the others are still done
            message = str(exc) if isinstance(exc, (ValueError, OSError)) else f"{type(exc).__name__}: {exc}"
            failed.append(f"{src}: {message}")
            rows.append({"image": src.name, "error": message})
            log.error("%s: %s", src, message)
            continue
        row = {"image": src.name, "scale": scale, "psnr_down": round(result.psnr, 3),
               "mse_down": f"{result.mse:.6g}", "reached_eps": result.reached_eps, "steps": result.steps,
               "total_steps": result.total_steps, "restart": result.restart, "seconds": round(result.seconds, 3),
               "error": ""}
        rows.append(row)
        print(f"{src.name}: x{scale}, downscaling PSNR {result.psnr:.2f} dB (MSE {result.mse:.2e}, eps "
              f"{'reached' if result.reached_eps else 'not reached'}) after {result.steps} steps (restart "
              f"{result.restart + 1}, {result.total_steps} in all), {result.seconds:.2f} s -> {hr_path}")
    _write_rows(out_dir / "pulse_results.csv", rows, RESULT_FIELDS)
    print(f"Wrote {len(inputs) - len(failed)} result(s) to {out_dir} (pulse_results.csv)")
    if failed:
        done = len(inputs) - len(failed)
        raise ValueError(f"{len(failed)} of {len(inputs)} image(s) failed ({done} done): " + "; ".join(failed))
    return rows
