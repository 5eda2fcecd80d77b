"""model=auto: the network and its constructor arguments read from a weights file (every architecture, every file
layout we read), src.export's files coming back with identical outputs, spandrel reading what we write, and
``python -m src.upscale`` with nothing but ``model.weights``."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image
from test_weights_import import (
    _savemat_model,
    made,
    mean_shift,
    to_official_edsr,
    to_official_rcan,
    to_original_esrgan,
    to_sequential_esrgan,
)
from torch import nn

import src.archs
import src.config.validation  # noqa: F401  (resolvers)
from src.archs import (
    CARN,
    CARNM,
    DRRN,
    EDSR,
    ESPCN,
    FSRCNN,
    IMDN,
    RCAN,
    RDN,
    SRCNN,
    VDSR,
    WDSRA,
    WDSRB,
    LapSRN,
    MSLapSRN,
    MSRResNet,
    RRDBNet,
    SRResNet,
    SRVGGNetCompact,
)
from src.config.validation import ConfigError
from src.evaluation.run import evaluate
from src.inference.image_files import read_input
from src.inference.upscale import upscale
from src.methods import LIGHTNING_NET_PREFIXES
from src.methods.sr_forward import SRForward
from src.weights.arch_table import ARCHS
from src.weights.auto_model import resolve_auto
from src.weights.checkpoints import WeightsError, export_basicsr
from src.weights.detection import MissingKnobError, detect_file, detect_state
from src.weights.export import export

REPO = Path(__file__).resolve().parents[1]

def _ch(kwargs: dict) -> int:
    return kwargs.get("num_in_ch", kwargs.get("in_nc", kwargs.get("num_colors")))


# (conf/model option, class, constructor arguments) at tiny widths; every network and every scale mode
CASES = [
    ("rrdb", RRDBNet, dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=8, num_block=2, num_grow_ch=4)),
    ("realesrgan", RRDBNet, dict(num_in_ch=3, num_out_ch=3, scale=2, num_feat=8, num_block=1, num_grow_ch=32)),
    ("rrdb", RRDBNet, dict(num_in_ch=3, num_out_ch=3, scale=1, num_feat=8, num_block=1, num_grow_ch=4)),
    ("srvgg_compact", SRVGGNetCompact, dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4,
                                            act_type="prelu")),
    ("srvgg_compact", SRVGGNetCompact, dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=3, upscale=2,
                                            act_type="leakyrelu")),
    ("edsr", EDSR, dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, upscale=3, res_scale=0.1,
                        img_range=255.0, rgb_mean=[0.5, 0.4, 0.3])),
    ("rcan", RCAN, dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_group=2, num_block=2, squeeze_factor=4, upscale=2,
                        res_scale=1.0, img_range=255.0, rgb_mean=[0.4488, 0.4371, 0.404])),
    ("rdn", RDN, dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, num_conv=2, num_grow_ch=4, upscale=3,
                      img_range=255.0)),
    ("msrresnet", MSRResNet, dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, upscale=4)),
    ("srgan", SRResNet, dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, upscale=2)),
    ("espcn", ESPCN, dict(num_in_ch=1, num_out_ch=1, upscale=3, num_feat=8)),
    ("espcn", ESPCN, dict(num_in_ch=3, num_out_ch=3, upscale=2, num_feat=8)),
    ("srcnn", SRCNN, dict(num_in_ch=1, num_out_ch=1, num_feat=8, num_feat2=4, kernel_sizes=[9, 1, 5])),
    ("fsrcnn", FSRCNN, dict(num_in_ch=1, num_out_ch=1, upscale=3, d=8, s=4, m=2)),
    ("vdsr", VDSR, dict(num_in_ch=1, num_out_ch=1, num_feat=8, num_layers=4)),
    # zoo II (entries by the zoo-II networks' author; here: export -> model=auto -> identical outputs -> upscale)
    ("carn", CARN, dict(num_in_ch=3, num_out_ch=3, num_feat=8, upscale=2, multi_scale=False, group=1)),
    ("carn_m", CARNM, dict(num_in_ch=3, num_out_ch=3, num_feat=8, upscale=3, multi_scale=True, group=4)),
    ("imdn", IMDN, dict(in_nc=3, nf=16, num_modules=2, out_nc=3, upscale=3)),
    ("lapsrn", LapSRN, dict(num_in_ch=1, num_feat=8, depth=2, upscale=4, kernel_size=3)),
    ("mslapsrn", MSLapSRN, dict(num_in_ch=1, num_feat=8, depth=2, recursive=2, upscale=2, skip="SS")),
    ("wdsr_a", WDSRA, dict(num_colors=3, num_feat=8, num_block=2, upscale=3, block_feats=16, res_scale=1.0)),
    ("wdsr_b", WDSRB, dict(num_colors=3, num_feat=8, num_block=2, upscale=2, expand=6, linear=0.8, res_scale=0.5)),
    ("drrn", DRRN, dict(num_in_ch=1, num_out_ch=1, num_feat=8, num_blocks=2, num_units=2, batch_norm=True)),
]
IDS = [f"{cls.__name__}-{kw.get('scale', kw.get('upscale', 'bicubic'))}-{_ch(kw)}ch" for _, cls, kw in CASES]


def _net(cls: type, kwargs: dict) -> nn.Module:
    """Random weights (and, with batch norm, running statistics)."""
    net = made(lambda: cls(**kwargs), 1)
    if cls in (SRResNet, DRRN):  # non-trivial batch-norm statistics
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net


def _spec(cls: type, kwargs: dict) -> tuple[int, str, str]:
    """(scale, input, color) the network runs at."""
    bicubic = cls in (SRCNN, VDSR, DRRN)
    scale = 2 if bicubic else kwargs.get("scale", kwargs.get("upscale"))
    return scale, "bicubic" if bicubic else "lr", "y" if _ch(kwargs) == 1 else "rgb"


def _lightning_ckpt(path: Path, option: str, cls: type, kwargs: dict, net: nn.Module) -> Path:
    """What src.train writes, reduced to what the loaders read (state dict under sr.net., hyperparameters)."""
    scale, input_, color = _spec(cls, kwargs)
    hparams = {"name": option, "scale": scale, "arch": {"_target_": f"src.archs.{cls.__name__}", **kwargs},
               "input": input_, "color": color}
    torch.save({"state_dict": {f"sr.net.{k}": v for k, v in net.state_dict().items()},
                "hyper_parameters": hparams}, path)
    return path


def _compose(config: str, *overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        return compose(config, overrides=list(overrides))


def test_every_network_has_an_entry():
    names = {e.name for e in ARCHS}
    assert len(names) == len(ARCHS) and names <= set(src.archs.__all__)
    assert {cls.__name__ for _, cls, _ in CASES} == names
    sr_nets = {n for n in src.archs.__all__ if "Discriminator" not in n and "Generator" not in n}
    assert sr_nets - {"VGGFeatureExtractor"} == names  # every network in src/archs (add an entry with a new one)


@pytest.mark.parametrize(("option", "cls", "kwargs"), CASES, ids=IDS)
def test_export_comes_back_through_model_auto(option, cls, kwargs, tmp_path):
    """src.export's file -> model=auto gives the same constructor arguments and identical outputs; upscale with
    only model.weights runs it."""
    net = _net(cls, kwargs)
    exported = export(_lightning_ckpt(tmp_path / "best.ckpt", option, cls, kwargs, net), tmp_path / "net.pth")
    found = detect_file(exported)
    assert found.arch == {"_target_": f"src.archs.{cls.__name__}", **kwargs} | {  # + defaults read from shapes
        k: v for k, v in found.kwargs.items() if k not in kwargs and inspect.signature(cls).parameters[k].default == v}
    assert (found.option, found.scale, found.input, found.color) == (option, *_spec(cls, kwargs))
    rebuilt = instantiate(found.arch)
    from src.weights.checkpoints import load_into

    load_into(rebuilt, exported)
    x = torch.rand(2, _ch(kwargs), 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(net(x), rebuilt.eval()(x))

    # the shapes alone (a bare state dict, no metadata) give every argument they can tell
    shapes_only = detect_state(net.state_dict(), scale=_spec(cls, kwargs)[0],
                               given={"act_type": kwargs.get("act_type")} if cls is SRVGGNetCompact else None)
    hidden = {"res_scale", "img_range", "rgb_mean", "recursive", "linear", "skip"}
    assert {k: shapes_only.kwargs.get(k) for k in kwargs if k not in hidden} == {
        k: v for k, v in kwargs.items() if k not in hidden}

    # python -m src.upscale input=… output=… model.weights=<file>: no model key (>= 65 px: no padding; 4k: x1 RRDBNet)
    img = (np.random.default_rng(0).random((68, 72, 3)) * 255).round().astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "in.png")
    (written,) = upscale(_compose("upscale", f"input={tmp_path / 'in.png'}", f"output={tmp_path / 'out'}",
                                  f"model.weights={exported}", "progress=false", "tile=0"))
    scale, input_, color = _spec(cls, kwargs)
    with torch.no_grad():
        expected = SRForward(net, scale=scale, input=input_, color=color)(
            torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255).clamp(0, 1)[0]
    got = read_input(written).pixels
    assert written.name == f"in_x{scale}.png" and got.shape == expected.shape
    assert (got - expected).abs().max() <= 0.5 / 255 + 1e-5


SPANDREL_CASES = [  # (class, arguments, spandrel's architecture id, its scale)
    (RRDBNet, dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=8, num_block=1, num_grow_ch=32), "ESRGAN", 4),
    (RRDBNet, dict(num_in_ch=3, num_out_ch=3, scale=2, num_feat=8, num_block=1, num_grow_ch=32), "ESRGAN", 2),
    (RRDBNet, dict(num_in_ch=3, num_out_ch=3, scale=1, num_feat=8, num_block=1, num_grow_ch=32), "ESRGAN", 1),
    (SRVGGNetCompact, dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4, act_type="prelu"),
     "Compact", 4),
    (RCAN, dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_group=2, num_block=2, squeeze_factor=4, upscale=2),
     "RCAN", 2),
    (RCAN, dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_group=1, num_block=1, squeeze_factor=2, upscale=3),
     "RCAN", 3),
]


@pytest.mark.parametrize(("cls", "kwargs", "arch_id", "scale"), SPANDREL_CASES,
                         ids=[f"{c[2]}-x{c[3]}" for c in SPANDREL_CASES])
def test_spandrel_reads_our_export(cls, kwargs, arch_id, scale, tmp_path):
    spandrel = pytest.importorskip("spandrel")
    net = _net(cls, kwargs)
    ema = _net(cls, kwargs)
    with torch.no_grad():
        for p in ema.parameters():
            p.mul_(0.9)
    from src.weights.writing import export_weights, metadata

    meta = metadata("x", {"_target_": f"src.archs.{cls.__name__}", **kwargs}, scale, "lr", "rgb")
    path, clients = export_weights(net.state_dict(), tmp_path / "net.pth", ema.state_dict(), meta)
    assert "spandrel" in clients
    model = spandrel.ModelLoader().load_from_file(str(path))
    assert (model.architecture.id, model.scale, model.input_channels) == (arch_id, scale, 3)
    x = torch.rand(1, 3, 12, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        theirs, ours = model.model.eval()(x.clone()), ema(x)  # spandrel takes params_ema, as we do
    assert theirs.shape == ours.shape and (theirs - ours).abs().max() < 1e-5
    if cls is RCAN:  # layout=basicsr: BasicSR key names, still read back by us (and by model=auto)
        path, clients = export_weights(net.state_dict(), tmp_path / "basicsr.pth", meta=meta, layout="basicsr")
        assert "conv_first.weight" in torch.load(path, weights_only=True)["params"] and "spandrel" not in clients
        assert detect_file(path).arch == meta["arch"] | {"res_scale": 1.0, "img_range": 255.0,
                                                          "rgb_mean": [0.4488, 0.4371, 0.404]}


def test_exports_other_clients_cannot_read_say_so(tmp_path, capsys):
    for cls, kwargs, words in [(ESPCN, dict(num_in_ch=1, num_out_ch=1, upscale=2, num_feat=8), "Y-channel"),
                               (IMDN, dict(in_nc=3, nf=16, num_modules=1, out_nc=3, upscale=2), "no IMDN"),
                               (EDSR, dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=2), "BasicSR"),
                               (SRVGGNetCompact, dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=1, upscale=2,
                                                      act_type="relu"), "PReLU Compact models only")]:
        net = _net(cls, kwargs)
        export(_lightning_ckpt(tmp_path / "b.ckpt", "x", cls, kwargs, net), tmp_path / "o.pth", overwrite=True)
        line = capsys.readouterr().out
        assert words in line and "spandrel (" not in line
        if cls is ESPCN:
            assert "no other client reads it" in line
        if cls in (ESPCN, IMDN):
            spandrel = pytest.importorskip("spandrel")
            with pytest.raises(spandrel.UnsupportedModelError):
                spandrel.ModelLoader().load_from_file(str(tmp_path / "o.pth"))


def test_every_layout_we_read(tmp_path):
    """Official EDSR (its own mean), official RCAN, original and sequential ESRGAN, VDSR .mat, BasicSR params_ema,
    our Lightning checkpoint with an EMA copy: the right network, and the file loads into it."""
    edsr = made(lambda: EDSR(3, 3, num_feat=8, num_block=2, upscale=2, rgb_mean=[0.5, 0.4, 0.3]), 1)
    official = to_official_edsr(edsr.state_dict(), 2)
    official.update({k: v for k, v in mean_shift(mean=torch.tensor([0.5, 0.4, 0.3])).items()})
    torch.save(official, tmp_path / "edsr.pt")
    found = detect_file(tmp_path / "edsr.pt")
    assert found.kwargs["rgb_mean"] == [0.5, 0.4, 0.3] and found.kwargs["upscale"] == 2
    assert found.layout == "official EDSR (EDSR-PyTorch)"
    rcan = made(lambda: RCAN(3, 3, num_feat=8, num_group=2, num_block=3, squeeze_factor=4, upscale=4), 1)
    torch.save(to_official_rcan(rcan.state_dict(), 2, 3), tmp_path / "rcan.pt")
    found = detect_file(tmp_path / "rcan.pt")
    assert (found.kwargs["num_group"], found.kwargs["num_block"], found.kwargs["upscale"]) == (2, 3, 4)
    rrdb = made(lambda: RRDBNet(3, 3, num_feat=8, num_block=2, num_grow_ch=4), 1)
    for convert in (to_original_esrgan, lambda s: to_sequential_esrgan(s, 2)):
        torch.save(convert(rrdb.state_dict()), tmp_path / "esrgan.pth")
        assert detect_file(tmp_path / "esrgan.pth").kwargs == {"num_in_ch": 3, "num_out_ch": 3, "scale": 4,
                                                               "num_feat": 8, "num_block": 2, "num_grow_ch": 4}
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(3, 3, 1, 4)), rng.normal(size=(3, 3, 4, 4)), rng.normal(size=(3, 3, 4, 1))]
    mat = _savemat_model(tmp_path / "vdsr.mat", weights, [np.zeros(4), np.zeros(4), np.zeros(1)])
    found = detect_file(mat, scale=3)
    assert (found.entry.name, found.kwargs["num_layers"], found.scale, found.color) == ("VDSR", 3, 3, "y")
    ema = made(lambda: RRDBNet(3, 3, scale=2, num_feat=8, num_block=1, num_grow_ch=4), 2)
    export_basicsr(rrdb.state_dict(), tmp_path / "bad_ema.pth", ema_state_dict=rrdb.state_dict())
    torch.save({"params": made(lambda: ESPCN(1, 1, 2, 8), 1).state_dict(), "params_ema": ema.state_dict()},
               tmp_path / "ema.pth")
    assert detect_file(tmp_path / "ema.pth").kwargs["scale"] == 2  # params_ema preferred, as BasicSR does
    state = {f"sr.net.{k}": v for k, v in rrdb.state_dict().items()}
    state |= {f"sr_ema.net.{k}": v for k, v in rrdb.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"name": "rrdb_gan", "scale": 4, "input": "lr",
                "color": "rgb", "arch": {"_target_": "src.archs.RRDBNet", "num_feat": 8}}}, tmp_path / "g.ckpt")
    found = detect_file(tmp_path / "g.ckpt", net_prefixes=LIGHTNING_NET_PREFIXES)
    assert found.option == "rrdb_gan" and found.kwargs["num_block"] == 2


def test_a_file_that_fits_nothing_names_the_closest(tmp_path):
    rrdb = made(lambda: RRDBNet(3, 3, num_feat=8, num_block=1, num_grow_ch=4), 1).state_dict()
    rrdb["conv_up3.weight"] = torch.zeros(8, 8, 3, 3)  # an x8 ESRGAN: our RRDBNet has two x2 steps
    torch.save(rrdb, tmp_path / "x8.pth")
    with pytest.raises(WeightsError) as info:
        detect_file(tmp_path / "x8.pth")
    message = str(info.value)
    assert "\n" not in message and "no known architecture fits" in message
    assert "closest: RRDBNet(" in message and "unexpected (conv_up3.weight)" in message
    torch.save({"encoder.weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    cfg = _compose("upscale", "input=x", "output=y", f"model.weights={tmp_path / 'other.pth'}")
    with pytest.raises(ConfigError, match=r"no known architecture fits .*closest: .*no conv_first"):
        resolve_auto(cfg, scale=None)


def test_knobs_the_file_cannot_tell_name_their_key(tmp_path):
    relu = made(lambda: SRVGGNetCompact(3, 3, num_feat=8, num_conv=1, upscale=2, act_type="relu"), 1)
    torch.save(relu.state_dict(), tmp_path / "compact.pth")
    with pytest.raises(MissingKnobError, match="model.arch.act_type=relu or model.arch.act_type=leakyrelu"):
        detect_file(tmp_path / "compact.pth")
    cfg = _compose("upscale", "input=x", "output=y", f"model.weights={tmp_path / 'compact.pth'}",
                   "model.arch.act_type=relu")
    assert resolve_auto(cfg, scale=None).kwargs["act_type"] == "relu" and cfg.model.name == "srvgg_compact"
    cfg = _compose("upscale", "input=x", "output=y", f"model.weights={tmp_path / 'compact.pth'}", "scale=4",
                   "model.arch.act_type=relu")
    with pytest.raises(ConfigError, match="holds an x2 SRVGGNetCompact, but scale=4"):
        resolve_auto(cfg, scale=4)
    torch.save(made(lambda: SRCNN(1, 1, 8, 4), 1).state_dict(), tmp_path / "srcnn.pth")
    cfg = _compose("upscale", "input=x", "output=y", f"model.weights={tmp_path / 'srcnn.pth'}")
    with pytest.raises(ConfigError, match="pass scale=<s>"):
        resolve_auto(cfg, scale=None)
    torch.save(made(lambda: FSRCNN(1, 1, 3, 8, 4, 1), 1).state_dict(), tmp_path / "fsrcnn.pth")
    with pytest.raises(MissingKnobError, match="cannot tell upscale: pass upscale: scale=<s>"):
        detect_file(tmp_path / "fsrcnn.pth")
    assert detect_file(tmp_path / "fsrcnn.pth", scale=3).kwargs["upscale"] == 3


def test_model_auto_in_evaluate_train_and_interpolate(tmp_path):
    net = _net(ESPCN, dict(num_in_ch=1, num_out_ch=1, upscale=2, num_feat=8))
    kwargs = dict(num_in_ch=1, num_out_ch=1, upscale=2, num_feat=8)
    path = export(_lightning_ckpt(tmp_path / "b.ckpt", "espcn", ESPCN, kwargs, net), tmp_path / "espcn.pth")
    from src.methods.loading import build_eval_model

    cfg = _compose("evaluate", "model=auto", f"model.weights={path}")  # scale=4 by default: the file's x2 wins
    from src.evaluation.run import _resolve_auto

    _resolve_auto(cfg)
    assert (cfg.scale, cfg.model.name, cfg.model.color) == (2, "espcn", "y")
    lr = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        assert torch.equal(build_eval_model(cfg.model, 2, None).net(lr[:, :1]), net(lr[:, :1]))
    cfg = _compose("evaluate", "model=auto", f"model.weights={path}", "benchmarks.scales=[3]")
    with pytest.raises(ConfigError, match="x2 only"):
        _resolve_auto(cfg)
    (tmp_path / "sets" / "Tiny" / "HR").mkdir(parents=True)  # one model, then methods mode: the same numbers
    Image.fromarray((np.random.default_rng(1).random((24, 20, 3)) * 255).astype(np.uint8)).save(
        tmp_path / "sets" / "Tiny" / "HR" / "a.png")
    bench = [f"benchmarks.root={tmp_path / 'sets'}", "benchmarks.sets=[Tiny]", "metrics.names=[psnr_y]", "device=cpu"]
    (single,) = evaluate(_compose("evaluate", "model=auto", f"model.weights={path}", *bench), tmp_path / "e1")
    (row,) = evaluate(_compose("evaluate", *bench, "benchmarks.scales=[2]",
                               f"methods=[{{name: mine, model: auto, weights: {path}}}]"), tmp_path / "e2")
    assert (single.scale, row.method, row.scale) == (2, "mine", 2)
    assert row.values["psnr_y"] == single.values["psnr_y"] and 5 < row.values["psnr_y"] < 60
    cfg = _compose("train", "model=auto", f"model.weights={path}", "logger=[]")  # fine-tuning: the recipe of espcn
    resolve_auto(cfg, fallback_scale=cfg.scale)
    method = instantiate(cfg.model, _recursive_=False)
    assert (cfg.data.patch_size, method.hparams.loss) == (34, "mse")
    with torch.no_grad():
        assert torch.equal(method.net(lr[:, :1]), net(lr[:, :1]))
    cfg = _compose("interpolate", "model=auto", f"a={path}", f"b={path}", f"output={tmp_path / 'mid.pth'}")
    from src.weights.interpolation import run_interpolation

    (mid,) = run_interpolation(cfg, tmp_path)
    assert detect_file(mid).arch == {"_target_": "src.archs.ESPCN", **kwargs}
