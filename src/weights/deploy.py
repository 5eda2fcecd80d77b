"""Deployable network files: ONNX and TorchScript exports with their input conventions, and an
onnxruntime-backed network so an exported file can be run (and checked) through ``evaluate`` / ``upscale``.

What is exported is the bare network (``SRForward.net``), not the colour and bicubic handling around it: those
depend on MATLAB's ``imresize``, whose interpolation weights are computed from the image size in Python and so
cannot be traced into a graph with dynamic height and width. The file states the convention instead (ONNX
``metadata_props``; TorchScript ``_extra_files['srsuite.json']``):

- ``scale``: the SR factor of the graph; ``input``: ``lr`` (the network upsamples) or ``bicubic`` (it expects
  the MATLAB-bicubic upsampled image, output at the same size);
- ``colour``: ``rgb`` (3 channels in and out) or ``y`` (one channel: MATLAB BT.601 luma
  Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255 of RGB in [0, 1]; Cb/Cr are taken from a bicubic upsampling);
- ``input_range``: ``0-1`` (float images in [0, 1]; outputs are not clamped); ``channels``; ``size_multiple``
  (LR height and width must be multiples of it); ``model`` (the ``conf/model`` name).

ONNX graphs use opset 17 with dynamic batch, height and width (TorchScript-based ``torch.onnx.export``; the
graphs of every network of the zoo trace without data-dependent control flow). After writing, each export is
run on two input sizes and compared with the PyTorch network (max |Δ| ≤ 1e-4 in fp32) — with onnxruntime for
ONNX files. ``half=True`` writes fp16 weights and fp16 inputs/outputs, meant for GPUs; it is checked against the
fp32 network within 2e-2 where the runtime can execute fp16 on the CPU.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from src.storage.atomic import atomic_path

OPSET = 17
TOLERANCE = 1e-4
HALF_TOLERANCE = 2e-2
CHECK_SIZES = ((1, 24, 20), (2, 17, 13))  # (batch, LR height, LR width): two sizes, one odd
TORCHSCRIPT_META = "srsuite.json"
COLOUR_TEXT = {
    "rgb": "rgb: 3 channels in and out",
    "y": "y: 1 channel, MATLAB BT.601 luma Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255 of RGB in [0, 1]; "
         "chroma from bicubic upsampling",
}


class ExportError(ValueError):
    """An export that cannot be made or does not reproduce the network."""


def _require(module: str):
    """Import an optional ONNX dependency, or fail with one line naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ExportError(f"{module} is not installed: install the ONNX extras (pip install -e '.[onnx]')") from exc


@dataclass(frozen=True)
class ExportSpec:
    """The input convention of an exported network (written into the file)."""

    model: str
    scale: int
    colour: str  # "rgb" | "y"
    input: str  # "lr" | "bicubic"
    channels: int
    size_multiple: int = 1
    input_range: str = "0-1"

    def metadata(self) -> dict[str, str]:
        meta = {k: str(v) for k, v in asdict(self).items()}
        meta["colour_description"] = COLOUR_TEXT[self.colour]
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str) -> ExportSpec:
        try:
            return cls(model=meta.get("model", "?"), scale=int(meta["scale"]), colour=meta["colour"],
                       input=meta["input"], channels=int(meta["channels"]),
                       size_multiple=int(meta.get("size_multiple", 1)), input_range=meta.get("input_range", "0-1"))
        except (KeyError, ValueError) as exc:
            raise ExportError(
                f"{source}: no srsuite metadata (scale, colour, input, channels) — export it with python -m "
                f"src.export … format=onnx, or give the model's conventions another way ({exc})"
            ) from exc


class _Frozen(nn.Module):
    """``net(x)`` in eval mode, as one traced graph (no scale argument)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _check_traceable(net: nn.Module, spec: ExportSpec) -> None:
    if hasattr(net, "levels_forward") and spec.scale & (spec.scale - 1):
        raise ExportError(
            f"{type(net).__name__} reaches x{spec.scale} by an antialiased bicubic resize of its x"
            f"{2 ** spec.scale.bit_length()} output, which ONNX opset {OPSET} cannot express: export x2/x4/x8"
        )


def _inputs(spec: ExportSpec, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for n, h, w in CHECK_SIZES:
        h, w = h * spec.size_multiple, w * spec.size_multiple
        if spec.input == "bicubic":
            h, w = h * spec.scale, w * spec.scale
        out.append(torch.rand(n, spec.channels, h, w, generator=gen).to(dtype))
    return out


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def export_onnx(net: nn.Module, path: str | Path, spec: ExportSpec, half: bool = False) -> dict[str, float]:
    """Write ``net`` as ONNX (opset 17, dynamic N/H/W, metadata), check it with onnxruntime on two input sizes;
    returns ``{"<n>x<h>x<w>": max |Δ|}`` (empty when the runtime cannot run fp16 on this machine)."""
    onnx = _require("onnx")
    _require("onnxruntime")
    _check_traceable(net, spec)
    path = Path(path)
    frozen = _Frozen(net).eval()
    with torch.no_grad():
        reference = [frozen(x) for x in _inputs(spec)]
    dtype = torch.float16 if half else torch.float32
    export_net = frozen.to(dtype)
    example = _inputs(spec, dtype)[0]
    axes = {0: "batch", 2: "height", 3: "width"}
    with atomic_path(path) as tmp:  # checked before it takes the final name; fsynced
        with torch.no_grad():
            torch.onnx.export(export_net, (example,), str(tmp), input_names=["lr"], output_names=["sr"],
                              opset_version=OPSET, dynamic_axes={"lr": axes, "sr": axes}, dynamo=False)
        model = onnx.load(str(tmp))
        for key, value in spec.metadata().items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
        frozen.float()
        diffs = _check_onnx(tmp, spec, reference, half)
    return diffs


def _check_onnx(path: Path, spec: ExportSpec, reference: list[torch.Tensor], half: bool) -> dict[str, float]:
    ort = _require("onnxruntime")

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs = [session.run(None, {"lr": x.numpy()})[0] for x in _inputs(spec, torch.float16 if half else
                                                                              torch.float32)]
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        if half:  # fp16 kernels missing on this CPU build: the file is still valid ONNX
            return {}
        raise ExportError(f"onnxruntime cannot run the exported graph: {exc}") from exc
    return _compare(reference, [torch.from_numpy(np.asarray(o)) for o in outputs], half, "onnxruntime")


def _compare(reference: list[torch.Tensor], outputs: list[torch.Tensor], half: bool, what: str) -> dict[str, float]:
    diffs = {}
    tol = HALF_TOLERANCE if half else TOLERANCE
    for ref, out in zip(reference, outputs):
        key = "x".join(map(str, ref.shape))
        if tuple(ref.shape) != tuple(out.shape):
            raise ExportError(f"{what}: output {tuple(out.shape)} instead of {tuple(ref.shape)}")
        diffs[key] = _max_diff(ref, out)
        if not diffs[key] <= tol:
            raise ExportError(f"{what}: output differs from PyTorch by {diffs[key]:.3g} (> {tol:g}) at {key}")
    return diffs


def export_torchscript(net: nn.Module, path: str | Path, spec: ExportSpec, half: bool = False) -> dict[str, float]:
    """Write ``torch.jit.trace(net)`` (metadata in ``_extra_files``), reload it and compare on two input sizes."""
    import warnings

    path = Path(path)
    frozen = _Frozen(net).eval()
    with torch.no_grad():
        reference = [frozen(x) for x in _inputs(spec)]
    dtype = torch.float16 if half else torch.float32
    inputs = _inputs(spec, dtype)
    frozen.to(dtype)
    with atomic_path(path) as tmp:  # checked before it takes the final name; fsynced
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated but still the TorchScript format
            traced = torch.jit.trace(frozen, (inputs[0],), check_trace=False)
            torch.jit.save(traced, str(tmp), _extra_files={TORCHSCRIPT_META: json.dumps(spec.metadata())})
            loaded = torch.jit.load(str(tmp))
            try:
                outputs = [loaded(x) for x in inputs]
            except RuntimeError as exc:
                if not half:
                    raise ExportError(f"the traced TorchScript module fails on another input size: {exc}") from exc
                outputs = None
        frozen.float()
        diffs = {} if outputs is None else _compare(reference, outputs, half, "TorchScript")
    return diffs


def read_onnx_spec(path: str | Path) -> ExportSpec:
    """The :class:`ExportSpec` stored in an ONNX file's ``metadata_props``."""
    onnx = _require("onnx")

    model = onnx.load(str(path), load_external_data=False)
    return ExportSpec.from_metadata({p.key: p.value for p in model.metadata_props}, str(path))


class OnnxNetwork(nn.Module):
    """An exported ONNX network run by onnxruntime, usable wherever a network is (``SRForward``, tiling):
    (N, C, h, w) float tensor -> (N, C, sh, sw) on the input's device (computed on the CPU, or CUDA when
    onnxruntime has the CUDA provider). ``unshuffle`` = the file's ``size_multiple`` (for the tiler)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        ort = _require("onnxruntime")

        self.path = str(path)
        self.spec = read_onnx_spec(path)
        self.unshuffle = self.spec.size_multiple
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(self.path, providers=providers)
        self.input_type = np.float16 if "float16" in self.session.get_inputs()[0].type else np.float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"lr": x.detach().float().cpu().numpy().astype(self.input_type)})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(x.device)
