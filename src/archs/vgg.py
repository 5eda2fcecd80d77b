"""VGG16/19 feature extractor with named layers (``conv5_4`` = before ReLU, ``relu5_4`` = after).

Weights: ``"imagenet"`` loads torchvision's IMAGENET1K_V1 weights with torchvision's own code from the torch
hub cache (``$TORCH_HOME/hub/checkpoints``), or reads an explicit ``weights_path``; it never downloads: a
missing file is an error that names it and where to put it. ``"random"`` is an explicit opt-in (tests,
machines without the file), logged as a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import torch
import torchvision
from torch import nn

log = logging.getLogger(__name__)

_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_WEIGHT_FILES = {
    "vgg16": ("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "vgg19": ("vgg19-dcbb9e9d.pth", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg_layer_names(vgg_type: str) -> list[str]:
    """Names of torchvision's ``features`` modules in order: conv1_1, relu1_1, conv1_2, …, pool5."""
    if vgg_type not in _BLOCKS:
        raise ValueError(f"vgg_type={vgg_type!r}: expected one of {sorted(_BLOCKS)}")
    names = []
    for block, n_conv in enumerate(_BLOCKS[vgg_type], start=1):
        for i in range(1, n_conv + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


def imagenet_weights_path(vgg_type: str, weights_path: str | None = None) -> Path:
    """Local file of torchvision's ImageNet VGG weights; ``FileNotFoundError`` with instructions if absent."""
    filename, url = _WEIGHT_FILES[vgg_type]
    path = Path(weights_path) if weights_path else Path(torch.hub.get_dir()) / "checkpoints" / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"{vgg_type.upper()} ImageNet weights not found: {path}\n"
            f"Get it with `python -m src.download names=[{vgg_type}]` (mirror=<folder> on offline machines), or "
            f"download {url} on a machine with internet access and copy it to {path} "
            f"(or set weights_path=<file>, or TORCH_HOME so that $TORCH_HOME/hub/checkpoints/{filename} exists). "
            "For tests without the file, weights=random is an explicit opt-in."
        )
    return path


class VGGFeatureExtractor(nn.Module):
    """Frozen VGG features at named layers.

    Args:
        layer_names: layers whose outputs are returned (``conv3_4``, ``relu5_4`` …).
        vgg_type: ``vgg19`` or ``vgg16``.
        use_input_norm: normalise the [0, 1] input with the ImageNet mean/std (what the weights expect).
        range_norm: the input is in [-1, 1]: map it to [0, 1] first.
        weights: ``"imagenet"`` (local torchvision file, see module doc) | ``"random"`` (explicit opt-in).
        weights_path: explicit path of the ImageNet weight file.

    Call: (N, 3, H, W) -> ``{name: (N, C_l, H_l, W_l)}``. Parameters have ``requires_grad=False``; the
    network is cut after the deepest requested layer.
    """

    def __init__(
        self,
        layer_names: Iterable[str],
        vgg_type: str = "vgg19",
        use_input_norm: bool = True,
        range_norm: bool = False,
        weights: str = "imagenet",
        weights_path: str | None = None,
    ) -> None:
        super().__init__()
        names = vgg_layer_names(vgg_type)
        self.layer_names = list(layer_names)
        unknown = [n for n in self.layer_names if n not in names]
        if unknown or not self.layer_names:
            raise ValueError(f"unknown VGG layer(s) {unknown or '(none given)'}; valid: {', '.join(names)}")
        if weights == "imagenet" and weights_path:
            net = getattr(torchvision.models, vgg_type)(weights=None)
            state = torch.load(imagenet_weights_path(vgg_type, weights_path), map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        elif weights == "imagenet":
            imagenet_weights_path(vgg_type)  # fail with instructions before torchvision would try to download
            # torchvision's own loading code (IMAGENET1K_V1), which reads the cached file and checks its hash
            net = getattr(torchvision.models, vgg_type)(weights="IMAGENET1K_V1")
        elif weights == "random":
            net = getattr(torchvision.models, vgg_type)(weights=None)
            log.warning("VGG feature extractor with RANDOM weights (weights=random): perceptual terms are not "
                        "ImageNet features; use only for tests and smoke runs")
        else:
            raise ValueError(f"weights={weights!r}: expected 'imagenet' or 'random'")
        last = max(names.index(n) for n in self.layer_names)
        self.features = nn.Sequential(*list(net.features.children())[: last + 1])
        for module in self.features:
            if isinstance(module, nn.ReLU):
                module.inplace = False  # keep the pre-activation (conv) outputs intact
        self._names = names[: last + 1]
        self.use_input_norm, self.range_norm = use_input_norm, range_norm
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatureExtractor:
        return super().train(False)  # always in eval mode (no dropout/BN here, but keep it frozen)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.range_norm:
            x = (x + 1) / 2
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        wanted = set(self.layer_names)
        out = {}
        for name, module in zip(self._names, self.features):
            x = module(x)
            if name in wanted:
                out[name] = x
        return out
