"""The VGG perceptual / style loss pinned on a seeded random VGG19, and checked against BasicSR's formulas
computed here independently from torchvision's ``vgg19().features`` (layer indices written out by hand).

A change in layer indexing (pre/post activation), input normalisation, feature scaling, the criteria or the Gram
normalisation changes these numbers.
"""

from __future__ import annotations

import math

import pytest
import torch
import torchvision

from src.losses.perceptual import PerceptualLoss, feature_distance

# torchvision vgg19().features indices: conv = before the ReLU, relu = after it
VGG19_INDEX = {"conv1_2": 2, "conv2_2": 7, "conv3_4": 16, "conv4_4": 25, "conv5_4": 34, "relu5_4": 35}
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
REAL_ESRGAN = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}

# name: (PerceptualLoss kwargs, pinned perceptual value, pinned style value or None)
CASES = {
    "esrgan_conv54_l1": (dict(layer_weights={"conv5_4": 1.0}, criterion="l1"), 0.011592126, None),
    "realesrgan_5_layers_l1": (dict(layer_weights=REAL_ESRGAN, criterion="l1"), 0.10128767, None),
    "srgan_relu54_l2": (dict(layer_weights={"relu5_4": 1.0}, criterion="l2", feature_scale=1 / 12.75),
                        6.388189e-07, None),
    "realesrgan_style_l1": (dict(layer_weights=REAL_ESRGAN, criterion="l1", style_weight=1.0),
                            0.10128767, 2.5314896e-05),
    "esrgan_conv54_fro_style": (dict(layer_weights={"conv5_4": 1.0}, criterion="fro", style_weight=1.0),
                                1.4044665, 0.0012411647),
}


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    torch.manual_seed(0)
    net = torchvision.models.vgg19(weights=None)
    path = tmp_path_factory.mktemp("vgg") / "vgg19_seed0.pth"
    torch.save(net.state_dict(), path)
    return path, net.features.eval()


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 3, 48, 48, generator=g)
    pred = (target + 0.1 * torch.randn(2, 3, 48, 48, generator=g)).clamp(0, 1)
    return pred, target


def reference(features, pred, target, layer_weights, criterion, feature_scale=1.0, style_weight=0.0):
    """BasicSR's PerceptualLoss (use_input_norm, no range_norm) written out on torchvision's layer list."""
    def feats(x):
        x = (x - MEAN) / STD
        out = {}
        for i, module in enumerate(features[: max(VGG19_INDEX[k] for k in layer_weights) + 1]):
            x = module(x) if not isinstance(module, torch.nn.ReLU) else torch.relu(x)
            for name, idx in VGG19_INDEX.items():
                if idx == i and name in layer_weights:
                    out[name] = x
        return out

    def dist(a, b):
        return {"l1": lambda: (a - b).abs().mean(), "l2": lambda: ((a - b) ** 2).mean(),
                "fro": lambda: torch.norm(a - b, p="fro")}[criterion]()

    def gram(x):
        n, c, h, w = x.shape
        f = x.view(n, c, h * w)
        return f.bmm(f.transpose(1, 2)) / (c * h * w)

    fp, ft = feats(pred), feats(target)
    percep = sum(w * dist(fp[k] * feature_scale, ft[k] * feature_scale) for k, w in layer_weights.items())
    style = sum(w * dist(gram(fp[k]), gram(ft[k])) for k, w in layer_weights.items()) * style_weight
    return float(percep), (float(style) if style_weight else None)


@pytest.mark.parametrize("case", list(CASES))
def test_pinned_values_and_basicsr_formulas(case, vgg_file, images):
    kwargs, pinned_percep, pinned_style = CASES[case]
    path, features = vgg_file
    loss = PerceptualLoss(**kwargs, weights="imagenet", weights_path=str(path))
    with torch.no_grad():
        percep, style = loss(*images)
        ref_percep, ref_style = reference(features, *images, **kwargs)
    assert float(percep) == pytest.approx(ref_percep, rel=1e-5)
    assert float(percep) == pytest.approx(pinned_percep, rel=1e-4)
    if pinned_style is None:
        assert style is None
    else:
        assert float(style) == pytest.approx(ref_style, rel=1e-5)
        assert float(style) == pytest.approx(pinned_style, rel=1e-4)


def test_fro_is_the_norm_of_the_whole_difference():
    a = torch.zeros(2, 3, 4, 5)
    b = torch.full((2, 3, 4, 5), 0.5)
    assert float(feature_distance(a, b, "fro")) == pytest.approx(math.sqrt(120 * 0.25))  # sqrt(30)
    # two 2x2 "channels" [[3, 4], [0, 0]] and [[0, 0], [0, 12]]: norm sqrt(9 + 16 + 144) = 13, not their mean 8.5
    d = torch.tensor([[[[3.0, 4.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 12.0]]]])
    assert float(feature_distance(torch.zeros_like(d), d, "fro")) == pytest.approx(13.0)
    assert float(feature_distance(a, b, "l1")) == pytest.approx(0.5)
    assert float(feature_distance(a, b, "l2")) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="criterion"):
        feature_distance(a, b, "l3")
