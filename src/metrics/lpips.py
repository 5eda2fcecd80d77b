"""LPIPS (Zhang et al. 2018) through torchmetrics' implementation, with weights read from local files only.

LPIPS needs two sets of weights:

* the **linear layers** (``lin0..lin4``) of LPIPS v0.1: shipped inside the torchmetrics wheel
  (``torchmetrics/functional/image/lpips_models/{alex,vgg}.pth``), so they are always available;
* the **ImageNet backbone** from torchvision: ``alexnet-owt-7be5be79.pth`` (``net="alex"``) or
  ``vgg16-397923af.pth`` (``net="vgg"``). torchvision would download it on first use; srsuite never does.
  It is read from ``backbone_path`` when given, else from ``$TORCH_HOME/hub/checkpoints/`` (torch's hub
  cache, ``~/.cache/torch/hub/checkpoints`` by default). When it is missing, a ``FileNotFoundError`` names the
  file, its official URL and the folder to put it in.

The network is torchmetrics' ``_LPIPS`` (what ``LearnedPerceptualImagePatchSimilarity`` wraps) built with a
randomly initialised backbone (``pnet_rand=True``, so torchvision downloads nothing) into which the local
backbone weights are then copied; the result equals torchmetrics' metric with the same weights.
``weights="random"`` keeps the (seeded) random backbone: an explicit opt-in for tests and smoke runs only,
its scores mean nothing.

Protocol of ``lpips``: RGB in [0, 1] (a gray image is expanded to 3 channels), quantized to uint8 values
as saved images are (``quantize_input``), shaved by ``crop_border``, mapped to [-1, 1]; lower is better.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch

from src.metrics.fidelity import quantize

__all__ = ["LPIPS_BACKBONES", "build_lpips", "lpips", "lpips_weight_files"]

Net = Literal["alex", "vgg"]
Weights = Literal["pretrained", "random"]

# net -> (torchvision checkpoint file name, official URL)
LPIPS_BACKBONES: dict[str, tuple[str, str]] = {
    "alex": ("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    "vgg": ("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
}


def _check_net(net: str) -> None:
    if net not in LPIPS_BACKBONES:
        raise ValueError(f"net must be one of {sorted(LPIPS_BACKBONES)}, got {net!r}")


def lpips_weight_files(net: Net = "alex", backbone_path: str | Path | None = None) -> dict[str, Path]:
    """Where the two weight files for ``net`` are looked for: ``{"backbone": ..., "linear": ...}``."""
    _check_net(net)
    from torchmetrics.functional.image import lpips as tm_lpips

    linear = Path(inspect.getfile(tm_lpips)).resolve().parent / "lpips_models" / f"{net}.pth"
    if backbone_path is not None:
        backbone = Path(backbone_path).expanduser()
    else:
        backbone = Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONES[net][0]
    return {"backbone": backbone, "linear": linear}


def _missing_message(net: str, missing: dict[str, Path]) -> str:
    lines = [f"LPIPS ({net}) weights not found; srsuite reads them from local files only:"]
    if "backbone" in missing:
        name, url = LPIPS_BACKBONES[net]
        lines.append(
            f"  - ImageNet backbone {name} (torchvision, {url}): expected at {missing['backbone']}. "
            f"Get it with `python -m src.download names=[lpips]`, or put the file in $TORCH_HOME/hub/checkpoints/ "
            f"(here: {Path(torch.hub.get_dir()) / 'checkpoints'}) or pass backbone_path=..."
        )
    if "linear" in missing:
        lines.append(
            f"  - LPIPS linear layers {net}.pth: expected at {missing['linear']} (shipped with torchmetrics; "
            "reinstall torchmetrics)"
        )
    return "\n".join(lines)


def _backbone_state(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _load_backbone(model: torch.nn.Module, path: Path) -> None:
    """Copy torchvision ``features.<i>.*`` weights into torchmetrics' sliced backbone (``slice<k>.<i>.*``)."""
    state = _backbone_state(path)
    target = {}
    for slice_name, block in model.net.named_children():
        for child_name, child in block.named_children():
            for param_name, _ in child.named_parameters(recurse=False):
                target[f"features.{child_name}.{param_name}"] = f"{slice_name}.{child_name}.{param_name}"
    missing = [k for k in target if k not in state]
    if missing:
        raise ValueError(f"{path}: not a torchvision checkpoint for this backbone (missing {missing[:3]} ...)")
    model.net.load_state_dict({dst: state[src] for src, dst in target.items()}, strict=True)


@lru_cache(maxsize=4)
def _build_cached(net: str, weights: str, backbone: str, linear: str) -> torch.nn.Module:
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the random backbone of weights="random" is reproducible
        model = _NoTrainLpips(net=net, pretrained=True, pnet_rand=True, model_path=linear)
    if weights == "pretrained":
        _load_backbone(model, Path(backbone))
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def build_lpips(
    net: Net = "alex",
    *,
    weights: Weights = "pretrained",
    backbone_path: str | Path | None = None,
) -> torch.nn.Module:
    """torchmetrics' LPIPS network (eval mode, frozen, CPU) with weights from local files only (cached).

    Args:
        net: ``"alex"`` (LPIPS default) or ``"vgg"``.
        weights: ``"pretrained"`` (the ImageNet backbone from ``backbone_path`` or the torch hub cache) or
            ``"random"`` (seeded random backbone; for tests only, never a fallback).
        backbone_path: explicit torchvision checkpoint for the backbone.

    Raises:
        FileNotFoundError: a needed weight file is missing (the message names it and where to put it).
    """
    _check_net(net)
    if weights not in ("pretrained", "random"):
        raise ValueError(f"weights must be 'pretrained' or 'random', got {weights!r}")
    files = lpips_weight_files(net, backbone_path)
    missing = {k: p for k, p in files.items() if not p.is_file() and (k == "linear" or weights == "pretrained")}
    if missing:
        raise FileNotFoundError(_missing_message(net, missing))
    backbone = str(files["backbone"].resolve()) if weights == "pretrained" else ""
    return _build_cached(net, weights, backbone, str(files["linear"]))


def lpips(
    sr: torch.Tensor,
    hr: torch.Tensor,
    net: Net = "alex",
    crop_border: int = 0,
    *,
    quantize_input: bool = True,
    weights: Weights = "pretrained",
    backbone_path: str | Path | None = None,
) -> float:
    """LPIPS distance of one image pair (lower is better; 0 for identical images).

    Args:
        sr, hr: float tensors (3, H, W) or (1, H, W) in [0, 1] of equal size (gray is expanded to RGB).
        net: backbone, ``"alex"`` or ``"vgg"``.
        crop_border: pixels shaved from every border.
        quantize_input: round to uint8 values first (what a saved PNG holds).
        weights, backbone_path: see ``build_lpips``.
    """
    if sr.ndim != 3 or hr.ndim != 3 or sr.shape[0] not in (1, 3) or hr.shape[0] not in (1, 3):
        raise ValueError(f"expected (3|1, H, W) tensors, got {tuple(sr.shape)} and {tuple(hr.shape)}")
    if sr.shape[1:] != hr.shape[1:]:
        raise ValueError(f"sr and hr sizes differ: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    model = build_lpips(net, weights=weights, backbone_path=backbone_path)
    crop_border = int(crop_border)
    h, w = sr.shape[1:]
    if crop_border < 0 or 2 * crop_border >= min(h, w):
        raise ValueError(f"crop_border={crop_border} does not fit a {h}x{w} image")
    pair = []
    for img in (sr, hr):
        img = img.detach().to("cpu")
        if crop_border:
            img = img[:, crop_border:-crop_border, crop_border:-crop_border]
        img = quantize(img) / 255.0 if quantize_input else img.to(torch.float64).clamp(0.0, 1.0)
        pair.append(img.expand(3, -1, -1).unsqueeze(0).to(torch.float32))
    with torch.no_grad():
        value = model(pair[0], pair[1], normalize=True)
    return float(value.reshape(-1)[0])
