"""Write network weights in BasicSR's format: ``python -m src.export ckpt=<file> output=<file.pth>``.

``ckpt`` is one of our Lightning checkpoints (``…/checkpoints/best.ckpt``; an EMA copy, when the checkpoint has
one, becomes ``params_ema``) or any weights file :mod:`src.checkpoints` reads (official EDSR/RCAN/ESRGAN
layouts, VDSR ``.mat``, ``.safetensors`` …), which is thereby converted to BasicSR key names. ``output`` gets
``{'params': …, 'params_ema': …}`` (``.pth``), which BasicSR, Real-ESRGAN and chaiNNer load; an output ending in
``.safetensors`` gets the flat (EMA) state dict instead. An existing ``output`` is an error unless
``overwrite=true``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from src.checkpoints import WeightsError, export_basicsr, lightning_weights, read_file, read_weights

KEYS = ("ckpt", "output", "overwrite")
REQUIRED = ("ckpt", "output")


def parse_args(argv: list[str]) -> dict[str, str]:
    parser = argparse.ArgumentParser(
        prog="python -m src.export",
        description="Write a checkpoint's network weights as a BasicSR {'params', 'params_ema'} file.",
        epilog="example: python -m src.export ckpt=outputs/…/checkpoints/best.ckpt output=espcn_x4.pth",
    )
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="ckpt=<input file> output=<output file> [overwrite=true]")
    args = parser.parse_args(argv)
    values: dict[str, str] = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        key = key.lstrip("-")
        if not sep or key not in KEYS:
            parser.error(f"expected key=value with key in {KEYS}, got {item!r}")
        values[key] = value
    missing = [k for k in REQUIRED if not values.get(k)]
    if missing:
        parser.error(f"missing {', '.join(f'{k}=…' for k in missing)}")
    overwrite = values.get("overwrite", "false").lower()
    if overwrite not in ("true", "false"):
        parser.error(f"overwrite={values['overwrite']!r}: expected true or false")
    values["overwrite"] = overwrite
    return values


def export(ckpt: str | Path, output: str | Path, overwrite: bool = False) -> Path:
    """Convert ``ckpt`` to BasicSR format at ``output``; returns the written path. An existing ``output`` is a
    :class:`FileExistsError` unless ``overwrite``."""
    if Path(output).exists() and not overwrite:
        raise FileExistsError(f"output file {output} already exists: pass overwrite=true to replace it")
    obj = read_file(ckpt)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict) and "hyper_parameters" in obj:
        params, ema = lightning_weights(obj)
        what = "Lightning checkpoint" + (" with EMA weights" if ema is not None else "")
    else:
        params, what = read_weights(ckpt)
        ema = None
    path = export_basicsr(params, output, ema)
    print(f"{ckpt} ({what}): {len(params)} tensors -> {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    values = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        export(values["ckpt"], values["output"], values["overwrite"] == "true")
    except (WeightsError, FileNotFoundError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
