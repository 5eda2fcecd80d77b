"""Degraded examples of your images, as ``python -m src.degrade`` writes them (settings: ``conf/degrade.yaml``).

Each image is read as RGB, cropped to a multiple of ``scale`` and degraded ``count`` times by the configured
pipeline: random pipelines draw from their training stream seeded by ``seed`` (with the training-pair pool switched
off, so every LR belongs to its own image), so successive versions differ and the same seed reproduces the same
files. Each image has its own stream (the run's ``seed`` and the file stem). Nothing
is written if an output file exists from other settings, unless ``overwrite=true``; a rerun with the same settings
resumes (finished images are kept); unreadable inputs are skipped, listed at the end, and the run then fails.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from src.config.schema import DegradeConfig
from src.config.validation import ConfigError, validate
from src.data.batch import SRBatch
from src.data.checks import check_image, check_images
from src.data.output_folders import BadInputsError, record_settings, same_settings

log = logging.getLogger(__name__)



def input_images(spec: str) -> list[Path]:
    """The image file ``spec``, or the images inside the folder ``spec``."""
    from src.data.image_io import list_images

    path = Path(str(spec)).expanduser()
    if path.is_dir():
        images = list_images(path)
        if not images:
            raise FileNotFoundError(f"input={spec}: no image files in this folder")
        return images
    if path.is_file():
        return [path]
    raise FileNotFoundError(f"input={spec}: no such file or folder")


def output_name(stem: str, degradation: str, scale: int, seed: int, index: int) -> str:
    return f"{stem}_{degradation}_x{scale}_s{seed}_{index}.png"


def degrade(cfg: DictConfig, degradation_name: str = "degradation") -> list[Path]:
    """Run the job described by a composed ``conf/degrade.yaml``; returns the written files."""
    from src.data.image_io import load_image, save_image
    from src.degradations import modcrop
    from src.storage.atomic import check_writable

    validate(cfg, DegradeConfig, trainer_key=None)
    if int(cfg.count) < 1:
        raise ConfigError(f"count={cfg.count}: must be >= 1")
    scale = int(cfg.scale)
    images = input_images(cfg.input)
    out_dir = Path(str(cfg.output)).expanduser()
    targets = []
    for path in images:
        names = [output_name(path.stem, degradation_name, scale, int(cfg.seed), i) for i in range(int(cfg.count))]
        if cfg.save_hr:
            names.append(f"{path.stem}_hr.png")
        targets.append((path, [out_dir / n for n in names]))
    check_writable(out_dir, what="output")  # before any image is computed
    deg_cfg = cfg.degradation
    if "queue_size" in deg_cfg:  # no pair pool: each LR must come from its own image
        with open_dict(deg_cfg):
            deg_cfg.queue_size = 0
    settings = {"degradation": OmegaConf.to_container(deg_cfg, resolve=True), "name": degradation_name,
                "scale": scale, "seed": int(cfg.seed), "count": int(cfg.count), "save_hr": bool(cfg.save_hr)}
    resume = not cfg.overwrite and same_settings(out_dir, "degrade", settings)
    existing = [p for _, files in targets for p in files if p.exists()]
    if existing and not (cfg.overwrite or resume):
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise ValueError(f"output file exists: {existing[0]}{more} (written with other settings, or not by "
                         f"src.degrade); pass overwrite=true to replace")
    damaged = check_images(existing, what="existing output") if resume else {}
    done = {path for path, files in targets if resume and all(f.exists() and f not in damaged for f in files)}
    if done:
        log.info("resuming: %d of %d image(s) already degraded with these settings are kept", len(done), len(images))
    todo = [(path, files) for path, files in targets if path not in done]
    if todo:
        record_settings(out_dir, "degrade", settings)

    device = torch.device(str(cfg.device))
    seeded = "seed" in deg_cfg
    shared = None if seeded else instantiate(deg_cfg)
    written, bad = [], {}
    for path, files in todo:
        try:
            hr = modcrop(load_image(path, channels=3), scale).unsqueeze(0).to(device)
        except Exception as exc:  # noqa: BLE001 - any unreadable input: name it, go on with the others
            bad[path] = check_image(path) or f"cannot be read: {str(exc).splitlines()[0] if str(exc) else exc!r}"
            log.warning("skipping %s: %s", path, bad[path])
            continue
        if min(hr.shape[-2:]) < scale:
            bad[path] = f"{hr.shape[-1]}x{hr.shape[-2]} px after cropping to a multiple of {scale}: too small"
            log.warning("skipping %s: %s", path, bad[path])
            continue
        # each image has its own stream (seed, file stem): the files do not depend on the other images, and a
        # resumed run writes what an uninterrupted one would have
        degradation = instantiate(deg_cfg, seed=image_seed(int(cfg.seed), path.stem)) if seeded else shared
        for i in range(int(cfg.count)):
            lr = degradation(SRBatch(hr=hr, training=True)).lr
            save_image(lr[0].cpu(), files[i])
            written.append(files[i])
        if cfg.save_hr:
            save_image(hr[0].cpu(), files[-1])
            written.append(files[-1])
        log.info("%s -> %s", path, ", ".join(f.name for f in files))
    kept = f", kept the files of {len(done)} image(s) from an earlier run with the same settings" if done else ""
    print(f"wrote {len(written)} files to {out_dir}{kept}")
    if bad:
        raise BadInputsError(bad, len(images), f"the files of the other {len(images) - len(bad)} are in {out_dir}")
    return written


def image_seed(seed: int, stem: str) -> int:
    """The degradation seed of one image: a hash of the run's ``seed`` and the file stem (31 bits)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{stem}".encode()).digest()[:4], "little") & 0x7FFFFFFF
