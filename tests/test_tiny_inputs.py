"""Tiny inputs (issue 12, item 10): 1x1 and 1x4000 images are padded to the network's receptive field (reflect,
then cropped), so a trained-like network returns the image's colours instead of near-black; evaluate names a
benchmark image too small to score."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.archs import ESPCN
from src.inference.tiling import min_input_size, pad_to_min_size
from src.inference.upscale import ModelRunner, Upscaler, UpscaleSettings

REPO = Path(__file__).resolve().parents[1]


def smoothing_espcn(scale: int = 2) -> ESPCN:
    """An ESPCN whose layers average their window (5x5, 3x3, 3x3; tanh in its linear range): like a trained
    network, its output is a smooth version of the input, and zero padding inside the layers darkens borders."""
    net = ESPCN(3, 3, upscale=scale, num_feat=6)
    with torch.no_grad():
        for conv in (net.conv1, net.conv2, net.conv3):
            conv.weight.zero_()
            conv.bias.zero_()
        for c in range(3):
            net.conv1.weight[c, c] = 0.1 / 25
            net.conv2.weight[c, c] = 1 / 9
            net.conv3.weight[c * scale**2 : (c + 1) * scale**2, c] = 10 / 9
    return net.eval()


def upscale_tensor(net, img: torch.Tensor, min_size: int, scale: int = 2) -> torch.Tensor:
    settings = UpscaleSettings(scale=scale, tile=512)
    upscaler = Upscaler(ModelRunner(net, torch.device("cpu")), settings, min_size=min_size)
    with torch.no_grad():
        return upscaler(img)[0]


def test_receptive_field_and_padding():
    net = smoothing_espcn()
    assert min_input_size(net) == 2 * (2 + 1 + 1) + 1  # radii of the 5x5, 3x3, 3x3 convolutions
    x = torch.arange(3.0).view(1, 1, 1, 3)
    padded, (top, left) = pad_to_min_size(x, 9)
    assert padded.shape[-2:] == (9, 9) and (top, left) == (4, 3)
    assert torch.equal(padded[..., top : top + 1, left : left + 3], x)
    assert padded[0, 0, 0].tolist() == [1, 2, 1, 0, 1, 2, 1, 0, 1]  # mirrored, repeated


def test_one_pixel_image_keeps_its_colour():
    net = smoothing_espcn()
    colour = torch.tensor([0.6, 0.3, 0.8]).view(3, 1, 1)
    padded = upscale_tensor(net, colour, min_input_size(net))
    assert padded.shape == (3, 2, 2)
    assert (padded - colour).abs().max() < 0.01
    unpadded = upscale_tensor(net, colour, 1)  # what zero padding alone gives: nearly black
    assert unpadded.max() < 0.05


def test_one_by_4000_strip_matches_bicubic():
    from src.degradations import imresize

    net = smoothing_espcn()
    x = torch.linspace(0, 1, 4000)
    strip = torch.stack([x, 1 - x, 0.5 + 0.3 * torch.sin(x * 20)]).view(3, 1, 4000)
    sr = upscale_tensor(net, strip, min_input_size(net))
    assert sr.shape == (3, 2, 8000)
    bicubic = imresize(strip.unsqueeze(0), 2.0)[0].clamp(0, 1)
    assert (sr - bicubic)[..., 10:-10].abs().max() < 0.01
    assert (sr - bicubic).abs().mean() < 0.002


def test_evaluate_names_a_benchmark_image_too_small_to_score():
    from src.evaluation.benchmark import BenchmarkImage, score_set

    hr = torch.rand(3, 12, 12)
    images = [BenchmarkImage("tiny.png", hr, hr[:, ::4, ::4].contiguous(), "generated")]
    with pytest.raises(ValueError, match=r"Tiny/tiny\.png: the HR image \(12x12 px\) is too small to score at x4"):
        score_set(lambda x: torch.nn.functional.interpolate(x, scale_factor=4), images, "nearest", "Tiny", 4)


def test_upscale_cli_tiny_images(tmp_path):
    from src.weights.checkpoints import export_basicsr

    weights = export_basicsr(smoothing_espcn().state_dict(), tmp_path / "espcn_x2.pth")
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.array([[[153, 77, 204]]], dtype=np.uint8)).save(folder / "dot.png")
    strip = np.stack([np.linspace(0, 255, 4000), np.full(4000, 128), np.linspace(255, 0, 4000)], -1)
    Image.fromarray(strip.round().astype(np.uint8)[None]).save(folder / "strip.png")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "src.upscale", f"input={folder}", f"output={tmp_path / 'out'}",
                           "model=espcn", "model.color=rgb", "model.arch.num_feat=6", f"model.weights={weights}",
                           "scale=2", "progress=false", f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dot = np.asarray(Image.open(tmp_path / "out" / "dot_x2.png")).astype(int)
    assert dot.shape == (2, 2, 3) and np.abs(dot - [153, 77, 204]).max() <= 2
    out = np.asarray(Image.open(tmp_path / "out" / "strip_x2.png")).astype(int)
    assert out.shape == (2, 8000, 3) and abs(out[..., 1].mean() - 128) < 1 and out[:, 4000:4010, 0].mean() > 120
