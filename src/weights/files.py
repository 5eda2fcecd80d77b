"""Reading weight files without executing code, and saying what a file that cannot be read is.

``torch.load(weights_only=True)`` (the restricted unpickler: tensors and plain containers, never code) reads
``.pth``/``.pt``/``.ckpt``/``.bin``, ``safetensors`` reads ``.safetensors`` and ``scipy.io.loadmat`` reads
MatConvNet ``.mat`` files (the official VDSR model; the DagNN LapSRN / MS-LapSRN models): their tensors come out
under ``matconvnet.`` / ``dagnn.`` names that :mod:`src.weights.layouts` renames to our keys.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

StateDict = dict[str, torch.Tensor]

TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")


class WeightsError(ValueError):
    """A weights file that cannot be read, fits no known layout or does not match the network."""


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



# ---- MatConvNet .mat files: VDSR (the official test code's model struct) ----------------------------------
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


# ---- MatConvNet DagNN .mat files: LapSRN / MS-LapSRN (phoenix104104/LapSRN) ---------------------------------
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



def describe_checkpoint(obj: Any) -> str | None:
    """``"a src.train checkpoint (espcn x4, step 3000)"`` for one of our Lightning checkpoints, else ``None``."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("hyper_parameters"), Mapping):
        return None
    hp = obj["hyper_parameters"]
    step = f", step {obj['global_step']}" if "global_step" in obj else ""
    return f"a src.train checkpoint ({hp.get('name', '?')} x{hp.get('scale', '?')}{step})"
