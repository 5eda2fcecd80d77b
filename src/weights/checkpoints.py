"""Weight import and export: our Lightning checkpoints, BasicSR files and the official layouts of older papers.

Reading is data-only: ``torch.load(weights_only=True)`` (the restricted unpickler: tensors and plain
containers, never code) for ``.pth``/``.pt``/``.ckpt``, ``safetensors`` for ``.safetensors`` and
``scipy.io.loadmat`` for MatConvNet ``.mat`` files (the official VDSR model).

A file is turned into a state dict with our (BasicSR) key names in two table-driven steps, as spandrel does:

1. **Container** (:data:`CONTAINERS`): how the weights are wrapped — our Lightning checkpoint
   (``state_dict`` with ``sr.net.`` keys), BasicSR's ``{'params': …, 'params_ema': …}`` (EMA preferred), a
   generic ``{'state_dict': …}``, or a bare state dict. ``module.`` (DataParallel/DDP) and ``_orig_mod.``
   (``torch.compile``) prefixes are removed.
2. **Key layout** (:data:`LAYOUTS`): recognised from key names — official EDSR / RCAN (EDSR-PyTorch),
   the original ESRGAN repository (``RRDB_trunk``, ``trunk_conv`` …) and its older sequential ``model.N``
   layout, the MatConvNet VDSR model, the MatConvNet DagNN LapSRN / MS-LapSRN models, the DRRN PyTorch port,
   or already our keys (BasicSR, and the official CARN, IMDN and WDSR key names, which our networks use) —
   and renamed to our keys.

When a network is given, the result is checked against ``net.state_dict()``; a mismatch raises
:class:`WeightsError` naming the file, the detected layout, the first missing / unexpected keys and the shape
mismatches. :func:`export_basicsr` writes the other direction (``{'params', 'params_ema'}``) so BasicSR,
Real-ESRGAN and chaiNNer load our networks.
"""

from __future__ import annotations

import io
import logging
import pickle
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.methods.sr_forward import SRForward
from src.storage.atomic import write_bytes

log = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]

NET_PREFIX = "sr.net."  # where SRForward puts the network inside our LightningModules
STRIP_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DDP, torch.compile
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
# EDSR-PyTorch's MeanShift defaults (DIV2K RGB mean, images in [0, 255]) = BasicSR's EDSR/RCAN defaults
DEFAULT_RGB_MEAN = (0.4488, 0.4371, 0.4040)
DEFAULT_IMG_RANGE = 255.0
LIST_LIMIT = 10


class WeightsError(ValueError):
    """A weights file that cannot be read, fits no known layout or does not match the network."""


# ---- reading files ------------------------------------------------------------------------------------------
def read_file(path: str | Path) -> Any:
    """The raw content of a weights file, read without executing code (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise WeightsError(f"{path}: cannot read it as .safetensors: {describe_file(path)}") from exc
    if suffix == ".mat":
        return _read_matconvnet(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() and _is_pickle_container(path):  # a global outside the allowlist
            raise WeightsError(
                f"{path}: refusing to unpickle it — the file holds Python objects besides tensors and plain "
                f"containers, and loading those could run code. Re-save only the state dict "
                f"(torch.save(model.state_dict(), …)) or convert it to .safetensors"
            ) from exc
        raise WeightsError(f"{path}: {describe_file(path)}; {EXPECTED_WEIGHTS}") from exc
    except Exception as exc:  # noqa: BLE001 - torch raises OSError, RuntimeError, KeyError … for a bad file
        raise WeightsError(f"{path}: {describe_file(path)}; {EXPECTED_WEIGHTS}") from exc


EXPECTED_WEIGHTS = "expected a PyTorch weights file (torch.save of a state dict or checkpoint), .safetensors or .mat"


def _is_pickle_container(path: Path) -> bool:
    """A complete zip archive (torch.save's format) or a legacy pickle stream (PROTO opcode)."""
    import zipfile

    with open(path, "rb") as f:
        head = f.read(2)
    return zipfile.is_zipfile(path) if head == b"PK" else len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def describe_file(path: str | Path) -> str:
    """What a file that is not a readable weights file looks like: empty, truncated/damaged archive, text …"""
    import zipfile

    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes)"
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"PK"):
        if not zipfile.is_zipfile(path):
            return f"a truncated or damaged PyTorch (zip) archive ({size:,} bytes; no end-of-archive record)"
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError) as exc:
            return f"a damaged PyTorch (zip) archive ({exc})"
        return f"a damaged zip archive (bad member {bad})" if bad else "a zip archive that is not a PyTorch file"
    if head[:1] == b"\x80":
        return f"a legacy PyTorch/pickle file that ends early or is damaged ({size:,} bytes)"
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return "an HTML page, not weights (a download that saved an error or login page?)"
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer file, not the weights (run `git lfs pull`)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"an unrecognised binary file ({size:,} bytes, starts with {head[:8].hex(' ')})"
    first = text.strip().splitlines()[0][:60] if text.strip() else ""
    return f"a text file, not weights (starts with {first!r})"


def load_checkpoint_file(path: str | Path) -> dict[str, Any]:
    """``torch.load`` with the restricted (weights-only) unpickler; a clear error for a missing file."""
    obj = read_file(path)
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: expected a dict of weights, found {type(obj).__name__}")
    return obj


def read_hparams(path: str | Path) -> dict[str, Any] | None:
    """The ``hyper_parameters`` of a Lightning checkpoint written by ``src.train``; ``None`` for a plain weights
    file (BasicSR, official, safetensors, .mat)."""
    if Path(path).suffix.lower() not in TORCH_SUFFIXES:
        return None
    hparams = load_checkpoint_file(path).get("hyper_parameters")
    return dict(hparams) if isinstance(hparams, Mapping) else None


# ---- step 1: containers -------------------------------------------------------------------------------------
def _strip_prefixes(state: Mapping[str, Any]) -> StateDict:
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in STRIP_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value
    return out


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _sub_dict(state: Mapping[str, Any], prefix: str) -> StateDict:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _find_ema_prefix(state: Mapping[str, Any], params: StateDict) -> str | None:
    """An EMA copy of the network inside a Lightning ``state_dict``: another prefix, containing ``ema``, under
    which every network key appears."""
    if not params:
        return None
    first = next(iter(params))
    for key in state:
        if key.endswith("." + first) and "ema" in key[: -len(first)].lower():
            prefix = key[: -len(first)]
            if prefix != NET_PREFIX and all(prefix + k in state for k in params):
                return prefix
    return None


def lightning_weights(ckpt: Mapping[str, Any]) -> tuple[StateDict, StateDict | None]:
    """(network weights, EMA weights or ``None``) of one of our Lightning checkpoints."""
    state = ckpt["state_dict"]
    params = _strip_prefixes(_sub_dict(state, NET_PREFIX))
    if not params:
        groups = sorted({k.split(".")[0] for k in state})
        raise WeightsError(f"Lightning checkpoint has no weights under '{NET_PREFIX}' (top-level modules: {groups})")
    ema_prefix = _find_ema_prefix(state, params)
    ema = _strip_prefixes(_sub_dict(state, ema_prefix)) if ema_prefix else None
    return params, ema


def _unwrap_lightning(obj: Mapping[str, Any]) -> StateDict:
    params, ema = lightning_weights(obj)
    return ema if ema is not None else params


def _unwrap_basicsr(obj: Mapping[str, Any]) -> StateDict:
    key = "params_ema" if _is_state_dict(obj.get("params_ema")) else "params"
    return _strip_prefixes(obj[key])


@dataclass(frozen=True)
class Container:
    """How a file wraps its state dict: ``detect(obj)`` on the loaded object, ``unwrap(obj)`` -> flat dict."""

    name: str
    detect: Callable[[Any], bool]
    unwrap: Callable[[Any], StateDict]


CONTAINERS: tuple[Container, ...] = (
    Container(
        "lightning (srsuite)",
        lambda o: isinstance(o, Mapping)
        and isinstance(o.get("state_dict"), Mapping)
        and any(k.startswith(NET_PREFIX) for k in o["state_dict"]),
        _unwrap_lightning,
    ),
    Container(
        "basicsr params/params_ema",
        lambda o: isinstance(o, Mapping) and (_is_state_dict(o.get("params_ema")) or _is_state_dict(o.get("params"))),
        _unwrap_basicsr,
    ),
    Container(
        "state_dict wrapper",
        lambda o: isinstance(o, Mapping) and _is_state_dict(o.get("state_dict")),
        lambda o: _strip_prefixes(o["state_dict"]),
    ),
    Container("bare state dict", _is_state_dict, _strip_prefixes),
)


def unwrap(obj: Any, source: str = "<weights>") -> tuple[StateDict, str]:
    """(flat state dict, container name) of a loaded file."""
    for container in CONTAINERS:
        if container.detect(obj):
            return container.unwrap(obj), container.name
    if isinstance(obj, Mapping):
        summary = ", ".join(f"{k!r}: {type(v).__name__}" for k, v in list(obj.items())[:LIST_LIMIT])
        raise WeightsError(
            f"{source}: not a known weights container (expected a state dict, {{'params'/'params_ema': …}} or a "
            f"Lightning checkpoint); top-level entries: {{{summary}}}"
        )
    raise WeightsError(f"{source}: expected a dict of weights, found {type(obj).__name__}")


# ---- step 2: key layouts ------------------------------------------------------------------------------------
Rule = tuple[str, str]


def _rename(state: Mapping[str, torch.Tensor], rules: Iterable[Rule]) -> StateDict:
    """Rename each key by the first rule whose pattern matches it entirely; unmatched keys are kept (they show
    up as unexpected keys when checked against a network)."""
    compiled = [(re.compile(p), r) for p, r in rules]
    out = {}
    for key, value in state.items():
        for pattern, repl in compiled:
            if pattern.fullmatch(key):
                key = pattern.sub(repl, key)
                break
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
    return _rename(_mean_shift(state, net, source), EDSR_RULES)


def _convert_rcan(state: StateDict, net: nn.Module | None, source: str) -> StateDict:
    return _rename(_mean_shift(state, net, source), RCAN_RULES)


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
    return _rename(state, ESRGAN_RULES)


def _convert_esrgan_sequential(state: StateDict, net: nn.Module | None, source: str) -> StateDict:
    """The pre-2019 ESRGAN network was one ``nn.Sequential``: conv_first (0), ShortcutBlock(RRDBs + trunk conv)
    (1), then per x2 step [Upsample, conv, LeakyReLU], then HR conv, LeakyReLU, last conv. The tail convs are
    recognised by their order: conv_up1, conv_up2, …, conv_hr, conv_last."""
    state = _rename(state, ESRGAN_SEQ_RULES)
    tail = re.compile(r"model\.(\d+)\.(weight|bias)")
    indices = sorted({int(m.group(1)) for k in state if (m := tail.fullmatch(k))})
    names = [f"conv_up{i + 1}" for i in range(len(indices) - 2)] + ["conv_hr", "conv_last"]
    mapping = dict(zip(indices, names))
    out = {}
    for key, value in state.items():
        m = tail.fullmatch(key)
        out[f"{mapping[int(m.group(1))]}.{m.group(2)}" if m else key] = value
    return out


# -- VDSR (MatConvNet .mat of the official test code) --
MATCONVNET_PREFIX = "matconvnet."


def _read_matconvnet(path: Path) -> StateDict:
    """A MatConvNet model struct ``model`` with cell arrays ``weight`` (H x W x Cin x Cout) and ``bias`` as
    ``matconvnet.<i>.weight`` (Cout, Cin, H, W) / ``matconvnet.<i>.bias`` tensors, in layer order.

    ``vl_nnconv`` computes a correlation, as ``torch.nn.functional.conv2d`` does, and indexes filters
    (row, column, in, out): the kernel maps over without flipping or transposing (checked numerically: this
    mapping reproduces VDSR's published PSNR, a flipped or transposed kernel loses several dB).
    """
    import numpy as np
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except Exception as exc:  # noqa: BLE001 - scipy raises several types for a bad file
        raise WeightsError(f"{path}: not a readable MATLAB v5 file ({exc})") from exc
    if "net" in mat and "model" not in mat:
        return _read_dagnn(mat["net"], path)
    if "model" not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise WeightsError(
            f"{path}: expected a MatConvNet struct 'model' with 'weight' and 'bias' (VDSR) or a DagNN struct 'net' "
            f"(LapSRN, MS-LapSRN); found {found}"
        )
    model = mat["model"]
    try:
        weights = [np.asarray(w) for w in model["weight"][0, 0].flat]
        biases = [np.asarray(b) for b in model["bias"][0, 0].flat]
    except (ValueError, IndexError) as exc:
        raise WeightsError(f"{path}: struct 'model' has no 'weight'/'bias' cell arrays") from exc
    if len(weights) != len(biases):
        raise WeightsError(f"{path}: {len(weights)} weight arrays but {len(biases)} bias arrays")
    state: StateDict = {}
    for i, (w, b) in enumerate(zip(weights, biases)):
        b = b.reshape(-1)
        w = w.reshape(*w.shape[:2], -1, b.size)  # MATLAB drops trailing singleton dims (Cout = 1)
        state[f"{MATCONVNET_PREFIX}{i}.weight"] = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
        state[f"{MATCONVNET_PREFIX}{i}.bias"] = torch.from_numpy(np.ascontiguousarray(b))
    return {k: v.float() for k, v in state.items()}


# -- LapSRN / MS-LapSRN (MatConvNet DagNN .mat of phoenix104104/LapSRN) --
DAGNN_PREFIX = "dagnn."
DAGNN_META = "dagnn_meta."  # graph facts that are not weights (MS-LapSRN depth, recursions, skip type)
MSLAPSRN_SKIPS = ("NS", "DS", "SS")


def _mat_str(value: Any) -> str:
    import numpy as np

    return str(np.asarray(value).flat[0]) if np.asarray(value).size else ""


def _read_dagnn(net: Any, path: Path) -> StateDict:
    """A MatConvNet ``dagnn.DagNN`` saved with ``net.saveobj()``: ``net.params`` (``name``, ``value``) and
    ``net.layers`` (``name``, ``type``, ``params``, ``block`` with the filter ``size``).

    Every parameter becomes ``dagnn.<name>``: filters reshaped to the layer's declared ``size`` (MATLAB drops
    trailing singleton dimensions) and permuted from H x W x Cin x Cout to PyTorch's (Cout, Cin, H, W) — for
    ``dagnn.ConvTranspose`` the MatConvNet order is H x W x Cout x Cin, which the same permutation maps to the
    (Cin, Cout, H, W) of ``nn.ConvTranspose2d``; biases flattened. For MS-LapSRN graphs (layer names
    ``x<s>SR_level<l>_R<r>_conv<d>``) the recursion count, block depth and local skip type are recorded as
    ``dagnn_meta.*`` entries, and a ``<stem>_opts.mat`` beside the file (the official options) is checked
    against them. Kernels are not flipped (both libraries compute correlations; checked numerically: the
    released LapSRN x4 reproduces its published PSNR).
    """
    import numpy as np

    try:
        layers = list(net["layers"][0, 0].flat)
        params = list(net["params"][0, 0].flat)
    except (ValueError, IndexError, KeyError) as exc:
        raise WeightsError(f"{path}: struct 'net' is not a DagNN (no 'layers'/'params')") from exc
    sizes: dict[str, tuple[int, ...]] = {}
    names: list[str] = []
    sums: dict[str, list[str]] = {}
    for layer in layers:
        name, kind = _mat_str(layer["name"]), _mat_str(layer["type"])
        names.append(name)
        if kind == "dagnn.Sum":
            sums[name] = [_mat_str(v) for v in np.asarray(layer["inputs"]).flat]
        block = layer["block"]
        if kind in ("dagnn.Conv", "dagnn.ConvTranspose") and layer["params"].size:
            size = tuple(int(v) for v in np.asarray(block["size"][0, 0]).flat)
            sizes[_mat_str(layer["params"].flat[0])] = size
    state: StateDict = {}
    for param in params:
        name = _mat_str(param["name"])
        value = np.asarray(param["value"], dtype=np.float32)
        if name in sizes:
            value = value.reshape(sizes[name], order="F") if value.ndim < 4 else value
            tensor = torch.from_numpy(np.ascontiguousarray(value.transpose(3, 2, 0, 1)))
        else:
            tensor = torch.from_numpy(np.ascontiguousarray(value.reshape(-1)))
        state[DAGNN_PREFIX + name] = tensor
    graph = [re.fullmatch(r"x\d+SR_level\d+_R(\d+)_conv(\d+)", n) for n in names]
    graph = [m for m in graph if m]
    if graph:
        recursive = max(int(m.group(1)) for m in graph)
        depth = max(int(m.group(2)) for m in graph)
        sources = {  # what the recursive blocks' outputs add: a block output (DS) or the level input (SS)
            other
            for inputs in sums.values()
            if any(re.fullmatch(r"x\d+SR_level\d+_R\d+_conv\d+", i) for i in inputs)
            for other in inputs
            if not re.fullmatch(r"x\d+SR_level\d+_R\d+_conv\d+", other)
        }
        skip = "DS" if any(o.endswith("_output") for o in sources) else "SS" if sources else "NS"
        _check_dagnn_opts(path, recursive, depth, skip)
        state[DAGNN_META + "recursive"] = torch.tensor(recursive)
        state[DAGNN_META + "depth"] = torch.tensor(depth)
        state[DAGNN_META + "skip"] = torch.tensor(MSLAPSRN_SKIPS.index(skip))
    return state


def _check_dagnn_opts(path: Path, recursive: int, depth: int, skip: str) -> None:
    """Compare the official ``<stem>_opts.mat`` (when present beside the model) with the graph."""
    from scipy.io import loadmat

    opts_path = path.with_name(path.stem + "_opts.mat")
    if not opts_path.is_file():
        return
    try:
        opts = loadmat(str(opts_path))["opts"]
        found = {k: opts[k][0, 0] for k in ("recursive", "depth", "LRL")}
    except Exception as exc:  # noqa: BLE001 - scipy raises several types for a bad file
        raise WeightsError(f"{opts_path}: expected an 'opts' struct with recursive, depth and LRL ({exc})") from exc
    got = {"recursive": int(found["recursive"].flat[0]), "depth": int(found["depth"].flat[0]),
           "LRL": _mat_str(found["LRL"])}
    want = {"recursive": recursive, "depth": depth, "LRL": skip}
    if got != want:
        raise WeightsError(f"{opts_path} says {got}, but the network graph in {path.name} has {want}")


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
           lambda s, net, source: _rename(s, DRRN_PORT_RULES)),
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


# ---- public API ---------------------------------------------------------------------------------------------
def _head(items: list[str]) -> str:
    more = f" … (+{len(items) - LIST_LIMIT} more)" if len(items) > LIST_LIMIT else ""
    return ", ".join(items[:LIST_LIMIT]) + more


def check_state_dict(state: Mapping[str, torch.Tensor], net: nn.Module, source: str = "<weights>",
                     layout: str = "?") -> None:
    """Raise :class:`WeightsError` unless ``state`` has exactly the keys and shapes of ``net.state_dict()``."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if not (missing or unexpected or shapes):
        return
    counts = ", ".join(f"{n} {what}" for n, what in ((len(missing), "missing keys"), (len(unexpected),
                       "unexpected keys"), (len(shapes), "shape mismatches")) if n)
    lines = [f"{source} (detected layout: {layout}) does not match {type(net).__name__}: {counts}"]
    if missing:
        lines.append(f"  missing keys ({len(missing)}): {_head(missing)}")
    if unexpected:
        lines.append(f"  unexpected keys ({len(unexpected)}): {_head(unexpected)}")
    if shapes:
        lines.append(f"  shape mismatches ({len(shapes)}): {_head(shapes)}")
    if layout == "basicsr" and unexpected:
        known = ", ".join(lay.name for lay in LAYOUTS)
        lines.append(f"  (the key names fit no other known layout, so they were taken as BasicSR keys; known: {known})")
    raise WeightsError("\n".join(lines))


def read_weights(path: str | Path, net: nn.Module | None = None) -> tuple[StateDict, str]:
    """(state dict with our keys, description ``"<container>, <layout>"``) of a weights file; checked against
    ``net`` when given (see :func:`load_weights`)."""
    source = str(path)
    obj = read_file(path)
    what = describe_checkpoint(obj)
    if what:
        source = f"{source} ({what})"
    state, container = unwrap(obj, source)
    state, layout = convert(state, net, source)
    if net is not None:
        check_state_dict(state, net, source, layout)
    return state, layout if container == "bare state dict" else f"{container}, {layout}"


def describe_checkpoint(obj: Any) -> str | None:
    """``"a src.train checkpoint (espcn x4, step 3000)"`` for one of our Lightning checkpoints, else ``None``."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("hyper_parameters"), Mapping):
        return None
    hp = obj["hyper_parameters"]
    step = f", step {obj['global_step']}" if "global_step" in obj else ""
    return f"a src.train checkpoint ({hp.get('name', '?')} x{hp.get('scale', '?')}{step})"


def check_resume_checkpoint(path: str | Path, method: nn.Module) -> None:
    """Before ``Trainer.fit(ckpt_path=path)``: the file must be one of our Lightning checkpoints of the same model
    name and scale whose weights fit ``method`` (a LightningModule); raises :class:`WeightsError` with one line
    saying what the file is and what this run expects."""
    obj = read_file(path)
    if not isinstance(obj, Mapping) or not isinstance(obj.get("state_dict"), Mapping) or "loops" not in obj:
        kind = describe_checkpoint(obj) or (
            "a weights file without training state" if isinstance(obj, Mapping) else type(obj).__name__)
        raise WeightsError(
            f"ckpt_path={path}: {kind}; resuming needs a Lightning checkpoint written by src.train "
            f"(…/checkpoints/last.ckpt). To start from weights only, pass model.weights={path}"
        )
    hp = obj.get("hyper_parameters") or {}
    ours = getattr(method, "hparams", {})
    for key in ("name", "scale"):
        if key in hp and key in ours and hp[key] != ours[key]:
            raise WeightsError(
                f"ckpt_path={path}: {describe_checkpoint(obj)}, but this run is {ours.get('name')} "
                f"x{ours.get('scale')} ({key} differs); resume with the same model and scale, or start from its "
                f"weights with model.weights=…"
            )
    own = method.state_dict()
    state = obj["state_dict"]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs run {tuple(own[k].shape)}" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        details = "; ".join(f"{label} ({len(items)}): {_head(items)}" for label, items in (
            ("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)) if items)
        raise WeightsError(
            f"ckpt_path={path}: {describe_checkpoint(obj) or 'a checkpoint'} whose network differs from this "
            f"run's ({details}); resume with the model settings it was trained with"
        )


def load_weights(path: str | Path, net: nn.Module | None = None) -> StateDict:
    """The weights in ``path`` as a state dict with our (BasicSR) key names.

    Any container of :data:`CONTAINERS` and layout of :data:`LAYOUTS` is accepted. With ``net`` the keys and
    shapes are checked against ``net.state_dict()`` (a :class:`WeightsError` lists what differs) and the
    network guides conversions that need it (the MatConvNet layer order, the EDSR mean shift); nothing is
    loaded into ``net`` — use :func:`load_into` for that.
    """
    return read_weights(path, net)[0]


def load_into(net: nn.Module, path: str | Path) -> str:
    """Load ``path`` into ``net`` with ``strict=True``; returns (and logs) the detected container and layout."""
    state, description = read_weights(path, net)
    net.load_state_dict(state, strict=True)
    log.info("loaded %s into %s (%s)", path, type(net).__name__, description)
    return description


def _export_tensor(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def export_basicsr(
    state_dict: Mapping[str, torch.Tensor], path: str | Path, ema_state_dict: Mapping[str, torch.Tensor] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``{'params': state_dict, 'params_ema': ema_state_dict or state_dict}`` (BasicSR's format, read by
    BasicSR, Real-ESRGAN, chaiNNer/spandrel), plus ``'srsuite': metadata`` when given (plain values: network
    name, constructor arguments, scale; other clients ignore it). A ``.safetensors`` path gets the flat EMA (else
    plain) weights and the metadata as JSON. Which key names suit which client: ``src.weights.detection``.
    Written atomically (:func:`src.storage.atomic.atomic_write`): a failed write leaves an existing file untouched."""
    path = Path(path)
    params = {k: _export_tensor(v) for k, v in _strip_prefixes(state_dict).items()}
    ema = {k: _export_tensor(v) for k, v in _strip_prefixes(ema_state_dict).items()} if ema_state_dict else params
    if set(ema) != set(params):
        raise WeightsError("export: the EMA weights do not have the same keys as the network weights")
    if path.suffix.lower() == ".safetensors":
        import json

        from safetensors.torch import save

        extra = {"srsuite": json.dumps(dict(metadata))} if metadata else {}
        write_bytes(path, save(ema, metadata={"format": "pt", **extra}))
    else:
        extra = {"srsuite": dict(metadata)} if metadata else {}
        buffer = io.BytesIO()  # serialised first: torch.save reports a failed write as an opaque RuntimeError
        torch.save({"params": params, "params_ema": ema, **extra}, buffer)
        write_bytes(path, buffer.getbuffer())
    return path


# ---- evaluation -----------------------------------------------------------------------------------------------
def build_eval_model(model_cfg: DictConfig, scale: int, ckpt_path: str | None, ckpt_key: str | None = "ckpt_path",
                     channels_last: bool = False) -> nn.Module:
    """The network of ``model_cfg`` at ``scale`` as an LR -> SR module, with weights from ``ckpt_path`` or
    ``model_cfg.weights`` (one of the two).

    A Lightning checkpoint written by ``src.train`` carries its own model hyperparameters: those are used
    (its ``name`` must match ``model.name``; its scale must match ``scale`` unless the network sees
    bicubic-upsampled input, which works at any scale). A weights file without hyperparameters (BasicSR,
    official layouts, .safetensors, .mat) is loaded into the network built from ``model_cfg`` at ``scale``.
    Parameter-free methods (bicubic) take no weights. ``ckpt_key``: the name of the caller's checkpoint key in
    messages (``None``: the caller has none, only ``model.weights``). ``channels_last``: run the network in that
    memory format (the entry point's ``channels_last``). An ``.onnx`` file (``python -m src.export …
    format=onnx``) runs through onnxruntime with the colour / input handling stated in its metadata.
    """
    weights = model_cfg.get("weights")
    if weights and str(weights).lower().endswith(".onnx"):  # an exported graph: run by onnxruntime
        from src.weights.deploy import onnx_sr_model

        return onnx_sr_model(weights, scale)
    method_cls = get_class(model_cfg._target_)
    if not getattr(method_cls, "trainable", True):
        if ckpt_path or weights:
            given = " / ".join(k for k in (ckpt_key, "model.weights") if k)
            raise ValueError(f"model={model_cfg.name} has no parameters: drop {given}")
        return instantiate(model_cfg, scale=scale)
    if ckpt_path and weights:
        raise ValueError(f"give either ckpt_path={ckpt_path} or model.weights={weights}, not both")
    source = ckpt_path or weights
    if not source:
        options = f"{ckpt_key}=<Lightning checkpoint> or " if ckpt_key else ""
        raise ValueError(
            f"model={model_cfg.name} needs trained weights: pass {options}model.weights=<weights file> "
            f"(BasicSR .pth, .safetensors, official layouts, or a .ckpt of src.train)"
        )
    hparams = read_hparams(source)
    if hparams is not None:
        if hparams.get("name") != model_cfg.name:
            raise ValueError(f"{source} is a '{hparams.get('name')}' checkpoint, but model={model_cfg.name} was given")
        if int(hparams["scale"]) != int(scale) and hparams.get("input") != "bicubic":
            raise ValueError(f"{source} was trained for x{hparams['scale']}, cannot evaluate it at x{scale}")
        net = instantiate(OmegaConf.create(hparams["arch"]))
        spec = {k: hparams[k] for k in ("input", "color")}
    else:
        net = instantiate(model_cfg.arch)
        spec = {"input": model_cfg.input, "color": model_cfg.color}
    load_into(net, source)
    return SRForward(net, scale=scale, channels_last=bool(channels_last), **spec).eval()
