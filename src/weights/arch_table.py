"""The networks model=auto recognises (:data:`ARCHS`): one :class:`ArchEntry` per network of :mod:`src.archs`.

Each entry has a key signature (regular expressions over our BasicSR-style key names), a function reading the
constructor arguments from the tensor shapes, the knobs the shapes cannot tell (with their default, or how to
pass them), the ``conf/model`` option whose training recipe goes with it, and the layout other clients read
(:attr:`ArchEntry.clients`, :attr:`ArchEntry.to_client`: BasicSR key names, except RCAN, which gets the official
EDSR-PyTorch names that chaiNNer's loader, spandrel 0.4.2, recognises). To add a network, append one entry.
:mod:`src.weights.detection` tries them on a file; :mod:`src.weights.writing` uses ``to_client`` to export.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from src.weights.files import StateDict
from src.weights.layouts import DEFAULT_IMG_RANGE, DEFAULT_RGB_MEAN, rename

REQUIRED = "<required>"


class UnfitError(Exception):
    """Why an entry does not fit a state dict (one short phrase)."""



@dataclass(frozen=True)
class Knob:
    """A constructor argument the shapes cannot tell.

    ``default``: a value, a function of the other arguments, or :data:`REQUIRED`; ``how``: the key that sets it;
    ``probe``: a stand-in used to check the structure while the real value is unknown (no influence on shapes).
    """

    default: Any = REQUIRED
    how: str = ""
    probe: Any = None


@dataclass(frozen=True)
class ArchEntry:
    """One network: how to recognise it in a state dict (our key names) and what to write for other clients.

    Args:
        name: class name in :mod:`src.archs`.
        signature: regular expressions; each must fully match some key for the entry to be tried.
        infer: state dict -> constructor arguments readable from the shapes (raises :class:`UnfitError`).
        option: the ``conf/model`` option with this network's training recipe (a function of the arguments).
        input: ``lr`` (the network upsamples) or ``bicubic`` (it refines a bicubic-upsampled input: no scale).
        scale_arg: the constructor argument holding the SR factor (``None`` for bicubic-input networks).
        knobs: arguments the shapes cannot tell (:class:`Knob`).
        clients: the arguments -> programs that read the exported file, besides srsuite.
        to_client: our keys -> the layout those clients read (``None``: BasicSR key names, as ours).
    """

    name: str
    signature: tuple[str, ...]
    infer: Callable[[StateDict], dict[str, Any]]
    option: Callable[[dict[str, Any]], str]
    input: str = "lr"
    scale_arg: str | None = "upscale"
    knobs: Mapping[str, Knob] = field(default_factory=dict)
    clients: Callable[[dict[str, Any]], str] = lambda kw: ""
    to_client: Callable[[StateDict, dict[str, Any]], StateDict | None] | None = None

    @property
    def target(self) -> str:
        return f"src.archs.{self.name}"


# ---- shape helpers ----------------------------------------------------------------------------------------------
def _shape(state: StateDict, key: str) -> tuple[int, ...]:
    if key not in state:
        raise UnfitError(f"no {key}")
    return tuple(state[key].shape)


def _indices(state: StateDict, prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    return sorted({int(m.group(1)) for k in state if (m := pattern.match(k))})


def _count(state: StateDict, prefix: str) -> int:
    """n for a sequence ``prefix.0 … prefix.{n-1}``."""
    found = _indices(state, prefix)
    if found != list(range(len(found))):
        raise UnfitError(f"{prefix}.* indices are not 0…n-1 ({found[:6]})")
    return len(found)


def _conv_indices(state: StateDict, prefix: str) -> list[int]:
    """Indices i with a 4-D ``prefix.i.weight`` (convolutions, not PReLU slopes)."""
    return [i for i in _indices(state, prefix) if state.get(f"{prefix}.{i}.weight", torch.empty(0)).ndim == 4]


def _root(n: int, base: int) -> int:
    """r with r*r*base == n, else :class:`UnfitError`."""
    r = math.isqrt(n // base) if base and n % base == 0 else 0
    if r < 1 or r * r * base != n:
        raise UnfitError(f"{n} output channels are not {base}·r² for an integer r")
    return r


def _shuffle_scale(state: StateDict, prefix: str, num_feat: int, convs: list[int]) -> int:
    """Scale of a sub-pixel upsampler: log2(s) convs to 4·C (x2^n) or one conv to 9·C (x3)."""
    if not convs:
        return 1
    outs = [state[f"{prefix}.{i}.weight"].shape[0] for i in convs]
    if len(outs) == 1 and outs[0] == 9 * num_feat:
        return 3
    if all(o == 4 * num_feat for o in outs):
        return 2 ** len(outs)
    raise UnfitError(f"{prefix} convs give {outs} channels: neither 4·{num_feat} per x2 step nor one 9·{num_feat} (x3)")


def _in_out(state: StateDict, first: str, last: str) -> dict[str, int]:
    return {"num_in_ch": _shape(state, first)[1], "num_out_ch": _shape(state, last)[0]}


# ---- the networks -----------------------------------------------------------------------------------------------
def _rrdbnet(s: StateDict) -> dict[str, Any]:
    num_feat, c_in = _shape(s, "conv_first.weight")[:2]
    out = _shape(s, "conv_last.weight")[0]
    # Real-ESRGAN's x2 / x1 models pixel-unshuffle the input by 2 / 4 in front of the same x4 trunk
    scale, num_in = (2, c_in // 4) if c_in == 4 * out else (1, c_in // 16) if c_in == 16 * out else (4, c_in)
    return {"num_in_ch": num_in, "num_out_ch": out, "scale": scale, "num_feat": num_feat,
            "num_block": _count(s, "body"), "num_grow_ch": _shape(s, "body.0.rdb1.conv1.weight")[0]}


def _srvgg(s: StateDict) -> dict[str, Any]:
    convs = _conv_indices(s, "body")
    if len(convs) < 2 or convs != list(range(0, 2 * len(convs), 2)):
        raise UnfitError(f"convs at body.{convs[:4]}… instead of body.0, body.2, …")
    num_feat, c_in = _shape(s, "body.0.weight")[:2]
    total = _shape(s, f"body.{convs[-1]}.weight")[0]
    out = next((c for c in dict.fromkeys((c_in, 3, 1)) if total % c == 0 and math.isqrt(total // c) ** 2 * c == total),
               None)
    if out is None:
        raise UnfitError(f"the last conv's {total} channels are not C·r²")
    kwargs = {"num_in_ch": c_in, "num_out_ch": out, "num_feat": num_feat, "num_conv": len(convs) - 2,
              "upscale": _root(total, out)}
    if "body.1.weight" in s:  # channel-wise PReLU slopes; ReLU / LeakyReLU leave no trace
        kwargs["act_type"] = "prelu"
    return kwargs


def _edsr(s: StateDict) -> dict[str, Any]:
    num_feat = _shape(s, "conv_first.weight")[0]
    return {**_in_out(s, "conv_first.weight", "conv_last.weight"), "num_feat": num_feat,
            "num_block": _count(s, "body"),
            "upscale": _shuffle_scale(s, "upsample", num_feat, _conv_indices(s, "upsample"))}


def _rcan(s: StateDict) -> dict[str, Any]:
    num_feat = _shape(s, "conv_first.weight")[0]
    squeezed = _shape(s, "body.0.residual_group.0.rcab.3.attention.1.weight")[0]
    return {**_in_out(s, "conv_first.weight", "conv_last.weight"), "num_feat": num_feat,
            "num_group": _count(s, "body"), "num_block": _count(s, "body.0.residual_group"),
            "squeeze_factor": num_feat // squeezed,
            "upscale": _shuffle_scale(s, "upsample", num_feat, _conv_indices(s, "upsample"))}


def _rdn(s: StateDict) -> dict[str, Any]:
    num_feat, c_in = _shape(s, "SFENet1.weight")[:2]
    grow = _shape(s, "RDBs.0.convs.0.conv.0.weight")[0]
    if "UPNet.4.weight" in s:
        upscale, out = 4, _shape(s, "UPNet.4.weight")[0]
    else:
        upscale, out = _root(_shape(s, "UPNet.0.weight")[0], grow), _shape(s, "UPNet.2.weight")[0]
    return {"num_in_ch": c_in, "num_out_ch": out, "num_feat": num_feat, "num_block": _count(s, "RDBs"),
            "num_conv": _count(s, "RDBs.0.convs"), "num_grow_ch": grow, "upscale": upscale}


def _msrresnet(s: StateDict) -> dict[str, Any]:
    num_feat = _shape(s, "conv_first.weight")[0]
    upscale = 4 if "upconv2.weight" in s else _root(_shape(s, "upconv1.weight")[0], num_feat)
    return {**_in_out(s, "conv_first.weight", "conv_last.weight"), "num_feat": num_feat,
            "num_block": _count(s, "body"), "upscale": upscale}


def _srresnet(s: StateDict) -> dict[str, Any]:
    num_feat = _shape(s, "conv_first.weight")[0]
    convs = [i for i in _conv_indices(s, "upsample") if i % 3 == 0]
    return {**_in_out(s, "conv_first.weight", "conv_last.weight"), "num_feat": num_feat,
            "num_block": _count(s, "body"), "upscale": _shuffle_scale(s, "upsample", num_feat, convs)}


def _espcn(s: StateDict) -> dict[str, Any]:
    kernels = tuple(_shape(s, f"conv{i}.weight")[-1] for i in (1, 2, 3))
    if kernels != (5, 3, 3):
        raise UnfitError(f"kernels {kernels}, ESPCN has (5, 3, 3)")
    num_feat, c_in = _shape(s, "conv1.weight")[:2]
    upscale = _root(_shape(s, "conv3.weight")[0], c_in)
    if upscale < 2:  # x1 would be SRCNN 5-3-3 with tanh: the shapes cannot tell them apart
        raise UnfitError("x1 sub-pixel output")
    return {"num_in_ch": c_in, "num_out_ch": c_in, "upscale": upscale, "num_feat": num_feat}


def _srcnn(s: StateDict) -> dict[str, Any]:
    return {**_in_out(s, "conv1.weight", "conv3.weight"), "num_feat": _shape(s, "conv1.weight")[0],
            "num_feat2": _shape(s, "conv2.weight")[0],
            "kernel_sizes": [_shape(s, f"conv{i}.weight")[-1] for i in (1, 2, 3)]}


def _fsrcnn(s: StateDict) -> dict[str, Any]:
    convs = _conv_indices(s, "body")
    d, c_in = _shape(s, "body.0.weight")[:2]
    return {"num_in_ch": c_in, "num_out_ch": _shape(s, "deconv.weight")[1], "d": d,
            "s": _shape(s, "body.2.weight")[0], "m": len(convs) - 3}


def _vdsr(s: StateDict) -> dict[str, Any]:
    n = _count(s, "layers")
    return {**_in_out(s, "layers.0.weight", f"layers.{n - 1}.weight"), "num_feat": _shape(s, "layers.0.weight")[0],
            "num_layers": n}


_RCAN_EXPORT_RULES = (  # our keys -> official EDSR-PyTorch RCAN keys (the inverse of layouts.RCAN_RULES)
    (r"body\.(\d+)\.residual_group\.(\d+)\.rcab\.([02])\.(weight|bias)", r"body.\1.body.\2.body.\3.\4"),
    (r"body\.(\d+)\.residual_group\.(\d+)\.rcab\.3\.attention\.1\.(weight|bias)",
     r"body.\1.body.\2.body.3.conv_du.0.\3"),
    (r"body\.(\d+)\.residual_group\.(\d+)\.rcab\.3\.attention\.3\.(weight|bias)",
     r"body.\1.body.\2.body.3.conv_du.2.\3"),
    (r"conv_first\.(weight|bias)", r"head.0.\1"),
    (r"upsample\.(\d+)\.(weight|bias)", r"tail.0.\1.\2"),
    (r"conv_last\.(weight|bias)", r"tail.1.\1"),
)


def _rcan_official(state: StateDict, kwargs: dict[str, Any]) -> StateDict | None:
    """Official RCAN keys with the ``sub_mean``/``add_mean`` convs, as spandrel's RCAN loader expects; ``None``
    when the network is not the one that loader builds (it fixes rgb_range = 255 and res_scale = 1)."""
    if float(kwargs.get("img_range", DEFAULT_IMG_RANGE)) != 255.0 or float(kwargs.get("res_scale", 1)) != 1.0:
        return None
    if kwargs["num_in_ch"] != 3 or kwargs["num_out_ch"] != 3:
        return None
    groups, blocks = kwargs["num_group"], kwargs["num_block"]
    rules = [*_RCAN_EXPORT_RULES, (r"body\.(\d+)\.conv\.(weight|bias)", rf"body.\1.body.{blocks}.\2"),
             (r"conv_after_body\.(weight|bias)", rf"body.{groups}.\1")]
    out = rename(state, rules, strict="RCAN export")
    mean = torch.tensor([float(v) for v in kwargs.get("rgb_mean", DEFAULT_RGB_MEAN)]).expand(3) * 255.0
    eye = torch.eye(3).view(3, 3, 1, 1)
    out.update({"sub_mean.weight": eye.clone(), "sub_mean.bias": -mean.clone(),
                "add_mean.weight": eye.clone(), "add_mean.bias": mean.clone()})
    return out


_Y_ONLY = "srsuite only (Y-channel network: no other client reads it)"


def _y_or_rgb(kwargs: dict[str, Any]) -> str:
    return _Y_ONLY if kwargs["num_in_ch"] == 1 else "srsuite only"


def _mean_knobs() -> dict[str, Knob]:
    return {"img_range": Knob(DEFAULT_IMG_RANGE, "model.arch.img_range=<r>"),
            "rgb_mean": Knob(list(DEFAULT_RGB_MEAN), "model.arch.rgb_mean=[r,g,b]")}


# -- zoo II: CARN / CARN-M, IMDN, LapSRN / MS-LapSRN, WDSR-A / -B, DRRN --
def _carn(s: StateDict) -> dict[str, Any]:
    num_feat, c_in = _shape(s, "entry.weight")[:2]
    multi = "upsample.up2.body.0.weight" in s
    first = "upsample.up2.body.0.weight" if multi else "upsample.up.body.0.weight"
    kwargs: dict[str, Any] = {"num_in_ch": c_in, "num_out_ch": _shape(s, "exit.weight")[0], "num_feat": num_feat,
                              "multi_scale": multi, "group": num_feat // _shape(s, first)[1]}
    if not multi:
        kwargs["upscale"] = _shuffle_scale(s, "upsample.up.body", num_feat, _conv_indices(s, "upsample.up.body"))
    return kwargs


def _carn_m(s: StateDict) -> dict[str, Any]:
    if "b1.b2.body.0.weight" in s:
        raise UnfitError("three residual units per block (CARN, not CARN-M)")
    return _carn(s)


def _imdn(s: StateDict) -> dict[str, Any]:
    nf, in_nc = _shape(s, "fea_conv.weight")[:2]
    modules = len({k.split(".")[0] for k in s if re.fullmatch(r"IMDB\d+\..*", k)})
    return {"in_nc": in_nc, "nf": nf, "num_modules": modules, "out_nc": in_nc,
            "upscale": _root(_shape(s, "upsampler.0.weight")[0], in_nc)}


def _lapsrn(s: StateDict) -> dict[str, Any]:
    num_feat, c_in, k = _shape(s, "input_conv.weight")[:3]
    return {"num_in_ch": c_in, "num_feat": num_feat, "depth": _count(s, "levels.0.convs"),
            "upscale": 2 ** _count(s, "levels"), "kernel_size": k}


def _mslapsrn(s: StateDict) -> dict[str, Any]:
    num_feat, c_in, k = _shape(s, "input_conv.weight")[:3]
    return {"num_in_ch": c_in, "num_feat": num_feat, "depth": _count(s, "convs"), "kernel_size": k}


def _wdsr(s: StateDict) -> dict[str, Any]:
    num_feat, colors = _shape(s, "head.0.weight_v")[:2]
    return {"num_colors": colors, "num_feat": num_feat, "num_block": _count(s, "body"),
            "upscale": _root(_shape(s, "tail.0.weight_v")[0], colors)}


def _wdsr_a(s: StateDict) -> dict[str, Any]:
    return {**_wdsr(s), "block_feats": _shape(s, "body.0.body.0.weight_v")[0]}


def _wdsr_b(s: StateDict) -> dict[str, Any]:
    kw = _wdsr(s)
    wide, low = _shape(s, "body.0.body.0.weight_v")[0], _shape(s, "body.0.body.2.weight_v")[0]
    if wide % kw["num_feat"]:
        raise UnfitError(f"expansion {wide} is not a multiple of {kw['num_feat']}")
    return {**kw, "expand": wide // kw["num_feat"], "linear": low / kw["num_feat"]}


def _drrn(s: StateDict) -> dict[str, Any]:
    num_feat, c_in = _shape(s, "blocks.0.entry.weight")[:2]
    kwargs: dict[str, Any] = {"num_in_ch": c_in, "num_out_ch": _shape(s, "output.weight")[0], "num_feat": num_feat,
                              "num_blocks": _count(s, "blocks"), "batch_norm": "bn_out.weight" in s}
    if kwargs["batch_norm"]:
        kwargs["num_units"] = _count(s, "blocks.0.bn1")
    return kwargs



def _carn_entry(name: str, option: str, block_key: str, infer: Callable[[StateDict], dict[str, Any]]) -> ArchEntry:
    """CARN / CARN-M: the official key names; told apart by one block's layout."""
    return ArchEntry(name, (r"sub_mean\.shifter\.weight", r"entry\.weight", block_key), infer, lambda kw: option,
                     knobs={"upscale": Knob(4, "scale=<s>")},
                     clients=lambda kw: "nmhkahn/CARN-pytorch (official key names)")


def _wdsr_entry(name: str, option: str, block_key: str, infer: Callable[[StateDict], dict[str, Any]]) -> ArchEntry:
    """WDSR-A / -B: weight-normalised official key names; told apart by the residual body's depth."""
    return ArchEntry(name, (r"head\.0\.weight_g", block_key, r"skip\.0\.weight_v"), infer, lambda kw: option,
                     knobs={"res_scale": Knob(1.0, "model.arch.res_scale=<r>")},
                     clients=lambda kw: "JiahuiYu/wdsr_ntire2018 (official key names)")


ARCHS: list[ArchEntry] = [
    ArchEntry(
        "RRDBNet", (r"conv_first\.weight", r"body\.0\.rdb1\.conv1\.weight", r"conv_body\.weight", r"conv_up1\.weight"),
        _rrdbnet, lambda kw: "rrdb", scale_arg="scale",
        clients=lambda kw: "BasicSR, Real-ESRGAN" + (", chaiNNer / spandrel (ESRGAN)" if kw["num_grow_ch"] == 32
                                                     else " (spandrel fixes num_grow_ch = 32)"),
    ),
    ArchEntry(
        "SRVGGNetCompact", (r"body\.0\.weight", r"body\.2\.weight"), _srvgg, lambda kw: "srvgg_compact",
        knobs={"act_type": Knob(REQUIRED, "model.arch.act_type=relu or model.arch.act_type=leakyrelu", "relu")},
        clients=lambda kw: "BasicSR, Real-ESRGAN" + (", chaiNNer / spandrel (Compact)" if kw["act_type"] == "prelu"
                                                     else " (spandrel reads PReLU Compact models only)"),
    ),
    ArchEntry(
        "RCAN", (r"conv_first\.weight", r"body\.0\.residual_group\.0\.rcab\.0\.weight"), _rcan, lambda kw: "rcan",
        knobs={"res_scale": Knob(1.0, "model.arch.res_scale=<r>"), **_mean_knobs()},
        clients=lambda kw: "chaiNNer / spandrel (RCAN), EDSR-PyTorch's RCAN (official key names; `layout=basicsr` "
                           "writes BasicSR's instead)",
        to_client=_rcan_official,
    ),
    ArchEntry(
        "EDSR", (r"conv_first\.weight", r"body\.0\.conv1\.weight", r"conv_after_body\.weight"), _edsr,
        lambda kw: "edsr" if (kw["num_feat"], kw["num_block"]) == (256, 32) else "edsr_baseline",
        knobs={"res_scale": Knob(lambda kw: 0.1 if kw["num_feat"] >= 256 else 1.0, "model.arch.res_scale=<r>"),
               **_mean_knobs()},
        clients=lambda kw: "BasicSR (spandrel 0.4.2 has no EDSR)",
    ),
    ArchEntry(
        "RDN", (r"SFENet1\.weight", r"RDBs\.0\.convs\.0\.conv\.0\.weight", r"UPNet\.0\.weight"), _rdn,
        lambda kw: "rdn", knobs={"img_range": Knob(DEFAULT_IMG_RANGE, "model.arch.img_range=<r>")},
        clients=lambda kw: "srsuite only (official EDSR-PyTorch RDN key names, inside `params`)",
    ),
    ArchEntry(
        "MSRResNet", (r"conv_first\.weight", r"body\.0\.conv1\.weight", r"upconv1\.weight", r"conv_hr\.weight"),
        _msrresnet, lambda kw: "msrresnet", clients=lambda kw: "BasicSR (MSRResNet)",
    ),
    ArchEntry(
        "SRResNet", (r"conv_first\.weight", r"act_first\.weight", r"body\.0\.bn1\.weight"), _srresnet,
        lambda kw: "srresnet", clients=lambda kw: "srsuite only",
    ),
    ArchEntry("ESPCN", (r"conv1\.weight", r"conv2\.weight", r"conv3\.weight"), _espcn, lambda kw: "espcn",
              clients=_y_or_rgb),
    ArchEntry("SRCNN", (r"conv1\.weight", r"conv2\.weight", r"conv3\.weight"), _srcnn, lambda kw: "srcnn",
              input="bicubic", scale_arg=None, clients=_y_or_rgb),
    ArchEntry(
        "FSRCNN", (r"body\.0\.weight", r"body\.2\.weight", r"deconv\.weight"), _fsrcnn, lambda kw: "fsrcnn",
        knobs={"upscale": Knob(REQUIRED, "scale=<s>", 2)}, clients=_y_or_rgb,
    ),
    ArchEntry("VDSR", (r"layers\.0\.weight", r"layers\.1\.weight"), _vdsr, lambda kw: "vdsr", input="bicubic",
              scale_arg=None, clients=_y_or_rgb),
    _carn_entry("CARN", "carn", r"b1\.b2\.body\.0\.weight", _carn),
    _carn_entry("CARNM", "carn_m", r"b1\.b1\.body\.4\.weight", _carn_m),
    ArchEntry("IMDN", (r"fea_conv\.weight", r"IMDB1\.c1\.weight", r"upsampler\.0\.weight"), _imdn, lambda kw: "imdn",
              clients=lambda kw: "Zheng222/IMDN (official key names, inside `params`; spandrel 0.4.2 has no IMDN)"),
    ArchEntry("LapSRN", (r"input_conv\.weight", r"levels\.0\.convs\.0\.weight", r"levels\.0\.img_up\.weight"),
              _lapsrn, lambda kw: "lapsrn", clients=_y_or_rgb),
    ArchEntry("MSLapSRN", (r"input_conv\.weight", r"convs\.0\.weight", r"upconv\.up\.weight", r"img_up\.weight"),
              _mslapsrn, lambda kw: "mslapsrn",
              knobs={"recursive": Knob(8, "model.arch.recursive=<r>", 1), "skip": Knob("SS", "model.arch.skip=SS"),
                     "upscale": Knob(4, "scale=<s>")}, clients=_y_or_rgb),
    _wdsr_entry("WDSRA", "wdsr_a", r"body\.0\.body\.2\.weight_v", _wdsr_a),
    _wdsr_entry("WDSRB", "wdsr_b", r"body\.0\.body\.3\.weight_v", _wdsr_b),
    ArchEntry("DRRN", (r"blocks\.0\.entry\.weight", r"blocks\.0\.conv1\.weight", r"output\.weight"), _drrn,
              lambda kw: "drrn", input="bicubic", scale_arg=None,
              knobs={"num_units": Knob(25, "model.arch.num_units=<u>", 1)}, clients=_y_or_rgb),
]


def entry_for(target: str) -> ArchEntry | None:
    """The entry of a ``_target_`` such as ``src.archs.RRDBNet``."""
    return next((e for e in ARCHS if e.target == target or e.name == target), None)
