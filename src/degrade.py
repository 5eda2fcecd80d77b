"""Write degraded examples of your images: ``python -m src.degrade input=<img|folder> output=<dir>
[degradation=realesrgan|classical|bicubic scale=4 seed=0 count=1]``.

See ``conf/degrade.yaml``. Each image is read as RGB, cropped to a multiple of ``scale`` and degraded ``count``
times by the configured pipeline: random pipelines draw from their training stream seeded by ``seed`` (with the
training-pair pool switched off, so every LR belongs to its own image), so successive versions differ and the
same seed reproduces the same files. Nothing is written if any output file already exists, unless
``overwrite=true``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from src.config import ConfigError, exit_on_user_error, validate

log = logging.getLogger(__name__)

DEGRADE_KEYS = ("degradation", "input", "output", "scale", "seed", "count", "save_hr", "overwrite", "device",
                "run_name")


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

    validate(cfg, DEGRADE_KEYS, trainer_key=None)
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
    if not cfg.overwrite:
        existing = [str(p) for _, files in targets for p in files if p.exists()]
        if existing:
            more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
            raise ValueError(f"output file exists: {existing[0]}{more}; pass overwrite=true to replace")

    deg_cfg = cfg.degradation
    if "queue_size" in deg_cfg:  # no pair pool: each LR must come from its own image
        with open_dict(deg_cfg):
            deg_cfg.queue_size = 0
    degradation = instantiate(deg_cfg)
    device = torch.device(str(cfg.device))
    written = []
    for path, files in targets:
        hr = modcrop(load_image(path, channels=3), scale).unsqueeze(0).to(device)
        if min(hr.shape[-2:]) < scale:
            raise ValueError(f"{path}: image smaller than the scale {scale}")
        for i in range(int(cfg.count)):
            if hasattr(degradation, "degrade_batch"):
                lr = degradation.degrade_batch(hr, training=True)["lr"]
            else:
                lr = degradation(hr)
            save_image(lr[0].cpu(), files[i])
            written.append(files[i])
        if cfg.save_hr:
            save_image(hr[0].cpu(), files[-1])
            written.append(files[-1])
        log.info("%s -> %s", path, ", ".join(f.name for f in files))
    print(f"wrote {len(written)} files to {out_dir}")
    return written


@hydra.main(version_base="1.3", config_path="../conf", config_name="degrade")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    degrade(cfg, HydraConfig.get().runtime.choices.get("degradation", "degradation"))


if __name__ == "__main__":
    from src.completion import handle_shell_completion

    handle_shell_completion("src.degrade")
    main()
