"""Structural checks of downloaded files, named by a manifest file's ``verify:`` (``{check: <name>, <arguments>}``).

A checksum proves that the bytes are the ones the manifest's source published; a structural check proves that they
are what the suite will load them as. It runs on the verified ``.part`` file before it is moved into place, so a
file that fails it never appears under its final name. Each check raises ``ValueError`` naming what is wrong.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path


def stylegan2_rosinality(path: Path, size: int = 1024, style_dim: int = 512, n_mlp: int = 8,
                         channel_multiplier: int = 2, channel_max: int = 512, latent_avg: bool = True) -> None:
    """``path`` is a StyleGAN2 checkpoint in rosinality's stylegan2-pytorch layout for this generator: it loads
    with ``torch.load(weights_only=True)``, holds ``g_ema`` with exactly the keys and shapes of
    :class:`src.archs.StyleGAN2Generator` built with these arguments, and (``latent_avg=True``) a ``latent_avg``
    tensor of shape (style_dim,), which rosinality's ``convert_weight.py`` writes beside ``g_ema``."""
    import argparse

    import torch

    from src.archs.stylegan2 import StyleGAN2Generator

    try:  # rosinality's training checkpoints also store their argparse arguments: a plain namespace, allowed
        with torch.serialization.safe_globals([argparse.Namespace]):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - anything unreadable is the check's failure
        text = " ".join(str(exc).split())  # torch's message spans many lines: keep its reason
        if "WeightsUnpickler error:" in text:
            text = text.split("WeightsUnpickler error:")[1].split(" Check the documentation")[0].strip()
        raise ValueError(f"does not load with torch.load(weights_only=True): {text}") from None
    if not isinstance(state, dict) or not isinstance(state.get("g_ema"), dict):
        found = sorted(map(str, state))[:8] if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"no 'g_ema' state dict (found {found})")
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        want = {k: tuple(v.shape) for k, v in StyleGAN2Generator(
            size=size, style_dim=style_dim, n_mlp=n_mlp, channel_multiplier=channel_multiplier,
            channel_max=channel_max).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state["g_ema"].items() if isinstance(v, torch.Tensor)}
    missing, unexpected = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    mismatched = sorted(k for k in set(want) & set(got) if want[k] != got[k])
    if missing or unexpected or mismatched:
        def few(keys: list[str]) -> str:
            return ", ".join(keys[:4]) + (f" … ({len(keys)})" if len(keys) > 4 else "") if keys else "none"

        raise ValueError(f"g_ema does not fit a {size} px StyleGAN2 generator (channel_multiplier "
                         f"{channel_multiplier}): missing {few(missing)}; unexpected {few(unexpected)}; shape "
                         f"mismatch {few(mismatched)}")
    avg = state.get("latent_avg")
    if latent_avg and not (isinstance(avg, torch.Tensor) and tuple(avg.shape) == (style_dim,)):
        shape = tuple(avg.shape) if isinstance(avg, torch.Tensor) else avg
        raise ValueError(f"latent_avg: expected a tensor of shape ({style_dim},), got {shape!r}")


CHECKS: dict[str, Callable[..., None]] = {"stylegan2_rosinality": stylegan2_rosinality}


def check_arguments(check: str, arguments: dict) -> str | None:
    """Why ``{check: <check>, **arguments}`` is not a valid ``verify:`` (unknown check or argument), else None."""
    if check not in CHECKS:
        return f"'verify.check' must be one of {', '.join(CHECKS)}, got {check!r}"
    params = list(inspect.signature(CHECKS[check]).parameters)[1:]
    unknown = [k for k in arguments if k not in params]
    if unknown:
        return f"verify: unknown argument '{unknown[0]}' of {check}; valid: {', '.join(params)}"
    return None


def run_check(path: Path, check: str, arguments: dict) -> None:
    """Run the named check on ``path``; ``ValueError`` names what does not fit."""
    CHECKS[check](path, **arguments)
