"""Key layouts (:data:`LAYOUTS`): recognising a state dict's naming from its keys and renaming it to ours.

Official EDSR / RCAN (EDSR-PyTorch), the original ESRGAN repository (``RRDB_trunk``, ``trunk_conv`` …) and its
older sequential ``model.N`` layout, the MatConvNet VDSR model, the MatConvNet DagNN LapSRN / MS-LapSRN models,
the DRRN PyTorch port, or already our keys (BasicSR, and the official CARN, IMDN and WDSR key names, which our
networks use). Each entry is a detector on the key names and a conversion to BasicSR keys; the first that fits
wins, as in spandrel.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from src.weights.files import (
    DAGNN_META,
    DAGNN_PREFIX,
    MATCONVNET_PREFIX,
    MSLAPSRN_SKIPS,
    StateDict,
    WeightsError,
)

# EDSR-PyTorch's MeanShift defaults (DIV2K RGB mean, images in [0, 255]) = BasicSR's EDSR/RCAN defaults
DEFAULT_RGB_MEAN = (0.4488, 0.4371, 0.4040)
DEFAULT_IMG_RANGE = 255.0


Rule = tuple[str, str]


def rename(state: Mapping[str, torch.Tensor], rules: Iterable[Rule], strict: str | None = None) -> StateDict:
    """Rename each key by the first rule (regular expression, replacement) whose pattern matches it entirely.
    Unmatched keys are kept (they show up as unexpected keys when checked against a network), or, with
    ``strict`` (a label for the message), raise :class:`WeightsError`."""
    compiled = [(re.compile(p), r) for p, r in rules]
    out = {}
    for key, value in state.items():
        for pattern, repl in compiled:
            if pattern.fullmatch(key):
                key = pattern.sub(repl, key)
                break
        else:
            if strict:
                raise WeightsError(f"{strict}: no official name for {key}")
        out[key] = value
    return out


def _has(*patterns: str) -> Callable[[Mapping[str, Any]], bool]:
    """Detector: every pattern fully matches at least one key."""
    compiled = [re.compile(p) for p in patterns]
    return lambda state: all(any(p.fullmatch(k) for k in state) for p in compiled)


# -- EDSR-PyTorch (official EDSR, EDSR-baseline, RCAN) --
_TAIL_RULES: tuple[Rule, ...] = (
    (r"head\.0\.(weight|bias)", r"conv_first.\1"),
    (r"tail\.0\.(\d+)\.(weight|bias)", r"upsample.\1.\2"),  # Upsampler: conv (+ PixelShuffle) per x2 step
    (r"tail\.1\.(weight|bias)", r"conv_last.\1"),
)
EDSR_RULES: tuple[Rule, ...] = (
    (r"body\.(\d+)\.body\.0\.(weight|bias)", r"body.\1.conv1.\2"),  # ResBlock: conv, ReLU, conv
    (r"body\.(\d+)\.body\.2\.(weight|bias)", r"body.\1.conv2.\2"),
    (r"body\.(\d+)\.(weight|bias)", r"conv_after_body.\2"),  # the conv after the last ResBlock
    *_TAIL_RULES,
)
_RCAB = r"body\.(\d+)\.body\.(\d+)\.body"  # group g, block b: body.g.body.b.body
RCAN_RULES: tuple[Rule, ...] = (
    # RCAB body: conv, ReLU, conv, CALayer (conv_du: conv, ReLU, conv, Sigmoid; BasicSR: pool, conv, ReLU, conv …)
    (_RCAB + r"\.([02])\.(weight|bias)", r"body.\1.residual_group.\2.rcab.\3.\4"),
    (_RCAB + r"\.3\.conv_du\.0\.(weight|bias)", r"body.\1.residual_group.\2.rcab.3.attention.1.\3"),
    (_RCAB + r"\.3\.conv_du\.2\.(weight|bias)", r"body.\1.residual_group.\2.rcab.3.attention.3.\3"),
    (r"body\.(\d+)\.body\.(\d+)\.(weight|bias)", r"body.\1.conv.\3"),  # a group's closing conv
    (r"body\.(\d+)\.(weight|bias)", r"conv_after_body.\2"),
    *_TAIL_RULES,
)


def _mean_shift(state: StateDict, net: nn.Module | None, source: str) -> StateDict:
    """Drop EDSR-PyTorch's fixed ``sub_mean``/``add_mean`` 1x1 convs after checking that they equal the
    normalisation our network applies (``(x - rgb_mean) * img_range`` and back)."""
    state = dict(state)
    sub_w, sub_b = state.pop("sub_mean.weight", None), state.pop("sub_mean.bias", None)
    add_w, add_b = state.pop("add_mean.weight", None), state.pop("add_mean.bias", None)
    if sub_b is None and add_b is None:
        return state
    img_range = float(getattr(net, "img_range", DEFAULT_IMG_RANGE))
    mean = getattr(net, "mean", None)
    mean = torch.as_tensor(DEFAULT_RGB_MEAN) if mean is None else torch.as_tensor(mean).flatten().float()
    expected = img_range * mean
    if expected.numel() == 1:  # one mean for every channel
        expected = expected.expand(3)
    eye = torch.eye(3).view(3, 3, 1, 1)
    for name, weight, bias, sign in (("sub_mean", sub_w, sub_b, -1.0), ("add_mean", add_w, add_b, 1.0)):
        if bias is None:
            continue
        if weight is not None and not torch.allclose(weight.float(), eye, atol=1e-5):
            raise WeightsError(
                f"{source}: {name}.weight is not the identity (rgb_std != 1), which our network cannot express"
            )
        found = sign * bias.float()
        if found.shape != expected.shape or not torch.allclose(found, expected, rtol=1e-3, atol=1e-3):
            raise WeightsError(
                f"{source}: {name} shifts by {[round(v, 4) for v in found.tolist()]} (= rgb_range x rgb_mean), but "
                f"the network normalises with img_range={img_range:g} x rgb_mean="
                f"{[round(v, 4) for v in mean.tolist()]} = {[round(v, 4) for v in expected.tolist()]}: build the "
                f"network with matching img_range / rgb_mean"
            )
    return state


def _convert_edsr(state: StateDict, net: nn.Module | None, source: str) -> StateDict:
    return rename(_mean_shift(state, net, source), EDSR_RULES)


def _convert_rcan(state: StateDict, net: nn.Module | None, source: str) -> StateDict:
    return rename(_mean_shift(state, net, source), RCAN_RULES)


# -- ESRGAN (xinntao/ESRGAN RRDBNet_arch.py, and the older sequential `model.N` network) --
_RRDB_NAMES = {"trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2", "HRconv": "conv_hr"}
ESRGAN_RULES: tuple[Rule, ...] = (
    (r"RRDB_trunk\.(\d+)\.RDB(\d)\.(conv\d)\.(weight|bias)", r"body.\1.rdb\2.\3.\4"),
    *((rf"{old}\.(weight|bias)", rf"{new}.\1") for old, new in _RRDB_NAMES.items()),
)
ESRGAN_SEQ_RULES: tuple[Rule, ...] = (
    (r"model\.0\.(weight|bias)", r"conv_first.\1"),
    (r"model\.1\.sub\.(\d+)\.RDB(\d)\.(conv\d)\.0\.(weight|bias)", r"body.\1.rdb\2.\3.\4"),
    (r"model\.1\.sub\.\d+\.(weight|bias)", r"conv_body.\1"),
)


def _convert_esrgan(state: StateDict, net: nn.Module | None, source: str) -> StateDict:
    return rename(state, ESRGAN_RULES)


def _convert_esrgan_sequential(state: StateDict, net: nn.Module | None, source: str) -> StateDict:
    """The pre-2019 ESRGAN network was one ``nn.Sequential``: conv_first (0), ShortcutBlock(RRDBs + trunk conv)
    (1), then per x2 step [Upsample, conv, LeakyReLU], then HR conv, LeakyReLU, last conv. The tail convs are
    recognised by their order: conv_up1, conv_up2, …, conv_hr, conv_last."""
    state = rename(state, ESRGAN_SEQ_RULES)
    tail = re.compile(r"model\.(\d+)\.(weight|bias)")
    indices = sorted({int(m.group(1)) for k in state if (m := tail.fullmatch(k))})
    names = [f"conv_up{i + 1}" for i in range(len(indices) - 2)] + ["conv_hr", "conv_last"]
    mapping = dict(zip(indices, names))
    out = {}
    for key, value in state.items():
        m = tail.fullmatch(key)
        out[f"{mapping[int(m.group(1))]}.{m.group(2)}" if m else key] = value
    return out


# -- LapSRN / MS-LapSRN (MatConvNet DagNN: weights named after the layers) --
def _dagnn_lapsrn(state: StateDict, net: nn.Module | None, source: str) -> StateDict:
    """LapSRN: ``level<l>`` counts down to ``level1`` (the last, full-resolution level) -> ``levels.{L-l}``."""
    levels = {int(m.group(1)) for k in state if (m := re.fullmatch(r"dagnn\.level(\d+)_.*", k))}
    top = max(levels)
    out = {}
    for key, value in state.items():
        name = key[len(DAGNN_PREFIX):]
        wb = "weight" if name.endswith("_f") else "bias"
        if m := re.fullmatch(r"level(\d+)_(.+)_[fb]", name):
            i, what = top - int(m.group(1)), m.group(2)
            if c := re.fullmatch(r"conv(\d+)", what):
                name = f"levels.{i}.convs.{int(c.group(1)) - 1}.{wb}"
            else:
                sub = {"upconv": "upconv.up", "residual_conv": "residual", "img_up": "img_up"}.get(what, what)
                name = f"levels.{i}.{sub}.{wb}"
        elif m := re.fullmatch(r"input_conv_[fb]", name):
            name = f"input_conv.{wb}"
        out[name] = value
    return out


def _dagnn_mslapsrn(state: StateDict, net: nn.Module | None, source: str) -> StateDict:
    """MS-LapSRN: weights shared by every level and recursion: ``conv<d>`` -> ``convs.{d-1}``, ``upconv``,
    ``residual_conv``, ``img_up``, ``input_conv``. The recorded graph (R, D, skip) must match ``net``."""
    state = dict(state)
    meta = {k[len(DAGNN_META):]: int(state.pop(k)) for k in list(state) if k.startswith(DAGNN_META)}
    if net is not None and meta:
        want = {"recursive": getattr(net, "recursive", None), "depth": len(getattr(net, "convs", ())),
                "skip": getattr(net, "skip", None)}
        got = {"recursive": meta["recursive"], "depth": meta["depth"], "skip": MSLAPSRN_SKIPS[meta["skip"]]}
        if want != got:
            raise WeightsError(
                f"{source}: the file is an MS-LapSRN with D={got['depth']}, R={got['recursive']}, skip "
                f"{got['skip']}, but the network has D={want['depth']}, R={want['recursive']}, skip {want['skip']}: "
                f"set model.arch.depth / recursive / skip to match"
            )
    out = {}
    for key, value in state.items():
        name = key[len(DAGNN_PREFIX):]
        wb = "weight" if name.endswith("_f") else "bias"
        stem = name[:-2]
        if c := re.fullmatch(r"conv(\d+)", stem):
            name = f"convs.{int(c.group(1)) - 1}.{wb}"
        else:
            name = {"input_conv": "input_conv", "upconv": "upconv.up", "residual_conv": "residual",
                    "img_up": "img_up"}.get(stem, stem) + f".{wb}"
        out[name] = value
    return out


# -- DRRN: the plain-ReLU PyTorch port (one recursive block: input, conv1, conv2, output; no biases, no BN) --
DRRN_PORT_RULES: tuple[Rule, ...] = (
    (r"input\.weight", "blocks.0.entry.weight"),
    (r"conv([12])\.weight", r"blocks.0.conv\1.weight"),
)


# -- VDSR (MatConvNet: a plain chain of convs) --
def _convert_matconvnet(state: StateDict, net: nn.Module | None, source: str) -> StateDict:
    """MatConvNet layer i -> ``layers.i`` of :class:`~src.archs.vdsr.VDSR` (a plain chain of convs)."""
    return {key.replace(MATCONVNET_PREFIX, "layers.", 1): value for key, value in state.items()}


@dataclass(frozen=True)
class Layout:
    """A key layout: ``detect(state)`` on the key names, ``convert(state, net, source)`` -> BasicSR keys."""

    name: str
    detect: Callable[[Mapping[str, Any]], bool]
    convert: Callable[[StateDict, nn.Module | None, str], StateDict]


LAYOUTS: tuple[Layout, ...] = (
    Layout("matconvnet (official VDSR .mat)", lambda s: all(k.startswith(MATCONVNET_PREFIX) for k in s),
           _convert_matconvnet),
    Layout("LapSRN (MatConvNet DagNN .mat)", _has(r"dagnn\.level\d+_conv\d+_f"), _dagnn_lapsrn),
    Layout("MS-LapSRN (MatConvNet DagNN .mat)", _has(r"dagnn\.conv\d+_f", r"dagnn\.upconv_f"), _dagnn_mslapsrn),
    Layout("official CARN (CARN-pytorch)",
           _has(r"sub_mean\.shifter\.weight", r"entry\.weight", r"b1\.c1\.body\.0\.weight"),
           lambda s, net, source: dict(s)),
    Layout("official IMDN", _has(r"fea_conv\.weight", r"IMDB1\.cca\.conv_du\.0\.weight", r"LR_conv\.weight"),
           lambda s, net, source: dict(s)),
    Layout("official WDSR (wdsr_ntire2018)", _has(r"head\.0\.weight_g", r"skip\.0\.weight_v", r"tail\.0\.weight_v"),
           lambda s, net, source: dict(s)),
    Layout("DRRN PyTorch port (input/conv1/conv2/output)",
           lambda s: set(s) == {"input.weight", "conv1.weight", "conv2.weight", "output.weight"},
           lambda s, net, source: rename(s, DRRN_PORT_RULES)),
    Layout("official RCAN (EDSR-PyTorch)",
           _has(r"head\.0\.weight", r"body\.\d+\.body\.\d+\.body\.3\.conv_du\.0\.weight"), _convert_rcan),
    Layout("official EDSR (EDSR-PyTorch)",
           _has(r"head\.0\.weight", r"body\.\d+\.body\.0\.weight", r"tail\.1\.weight"), _convert_edsr),
    Layout("original ESRGAN (RRDB_trunk)", _has(r"RRDB_trunk\.\d+\.RDB1\.conv1\.weight", r"trunk_conv\.weight"),
           _convert_esrgan),
    Layout("old ESRGAN (sequential model.N)", _has(r"model\.0\.weight", r"model\.1\.sub\.\d+\.RDB1\.conv1\.0\.weight"),
           _convert_esrgan_sequential),
    Layout("basicsr", lambda s: True, lambda s, net, source: dict(s)),  # already our keys
)


def convert(state: StateDict, net: nn.Module | None = None, source: str = "<weights>") -> tuple[StateDict, str]:
    """(state dict with BasicSR keys, layout name): the first :data:`LAYOUTS` entry whose detector fits."""
    for layout in LAYOUTS:
        if layout.detect(state):
            return layout.convert(state, net, source), layout.name
    raise AssertionError("unreachable: the basicsr layout accepts everything")
