"""Fidelity to BasicSR: same constructor args -> same state-dict keys/shapes and the same outputs for the same weights.

The reference files in ``tests/data/basicsr_reference/`` were produced by BasicSR 1.4.2's own modules with
``experiments/model_zoo/make_basicsr_reference.py`` (random unit-gain weights, 8-bit random inputs). Each test
builds our class with the stored config, loads the stored state dict with ``strict=True`` and compares outputs:
max |delta| <= 1e-4 x max |reference output| (float32).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import src.archs as archs

REF_DIR = Path(__file__).resolve().parent / "data" / "basicsr_reference"
REF_FILES = sorted(REF_DIR.glob("*.pt"))
# every network BasicSR ships that we implement must be covered by at least one reference file
BASICSR_ARCHS = {
    "EDSR",
    "RCAN",
    "RRDBNet",
    "MSRResNet",
    "SRVGGNetCompact",
    "VGGStyleDiscriminator",
    "UNetDiscriminatorSN",
}
REL_TOL = 1e-4


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _build(ref: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    net = getattr(archs, ref["arch"])(**ref["config"])
    state = {k: v.float() if v.is_floating_point() else v for k, v in ref["state_dict"].items()}
    net.load_state_dict(state, strict=True)
    return net


def _assert_close(out: torch.Tensor, expected: torch.Tensor) -> None:
    assert out.shape == expected.shape
    scale = expected.abs().max().item()
    delta = (out - expected).abs().max().item()
    assert delta <= REL_TOL * max(scale, 1e-12), f"max |delta| = {delta:.3g}, output magnitude {scale:.3g}"


def test_reference_files_present_and_cover_every_basicsr_arch():
    assert REF_FILES, f"no reference files in {REF_DIR}"
    assert {_load(p)["arch"] for p in REF_FILES} == BASICSR_ARCHS
    assert sum(p.stat().st_size for p in REF_FILES) < 1.5 * 2**20


@pytest.mark.parametrize("path", REF_FILES, ids=[p.stem for p in REF_FILES])
def test_matches_basicsr(path: Path):
    ref = _load(path)
    net = _build(ref)
    # same keys and shapes, in the same order
    ours = net.state_dict()
    assert list(ours) == list(ref["state_dict"])
    assert all(ours[k].shape == v.shape for k, v in ref["state_dict"].items())

    x = ref["input_u8"].float() / 255.0
    net.eval()
    with torch.no_grad():
        _assert_close(net(x.clone()), ref["output"])
    if "output_train" in ref:
        net.train()
        with torch.no_grad():
            _assert_close(net(x.clone()), ref["output_train"])


@pytest.mark.parametrize("name", ["edsr_x3", "rrdbnet_x2", "srvgg_prelu_x4", "unet_disc_sn"])
def test_matches_basicsr_channels_last(name: str):
    """Same numbers with a channels_last input and model (the layout recommended for CPU training)."""
    ref = _load(REF_DIR / f"{name}.pt")
    net = _build(ref).eval().to(memory_format=torch.channels_last)
    x = (ref["input_u8"].float() / 255.0).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        _assert_close(net(x).contiguous(), ref["output"])


def test_reference_is_sensitive():
    """The comparison would notice a wrong residual scale: perturbing it moves the output far beyond tolerance."""
    ref = _load(REF_DIR / "edsr_x2.pt")
    net = _build(ref).eval()
    for block in net.body:
        block.res_scale = 0.2  # the reference uses 0.1
    x = ref["input_u8"].float() / 255.0
    with torch.no_grad():
        delta = (net(x) - ref["output"]).abs().max().item()
    assert delta > 100 * REL_TOL * ref["output"].abs().max().item()
