"""``evaluate`` with ``tile=``: tiled network + tiled back-projection agree with whole-image inference."""

from __future__ import annotations

import torch

from src.archs import ESPCN
from src.evaluation.run import with_inference_options
from src.inference.back_projection import back_project, back_project_tiled


def test_tiled_back_projection_equals_whole_image():
    gen = torch.Generator().manual_seed(0)
    lr = torch.rand(1, 3, 45, 70, generator=gen)
    sr = torch.rand(1, 3, 90, 140, generator=gen)
    whole = back_project(sr, lr, 2, iterations=3)
    tiled = back_project_tiled(sr, lr, 2, iterations=3, tile=16)
    assert tiled.shape == whole.shape
    assert float((tiled - whole).abs().max()) < 1e-5
    # the margin matters: without it the tile borders would differ
    from src.inference import back_projection

    reach, back_projection.REACH_PER_ITERATION = back_projection.REACH_PER_ITERATION, 0
    try:
        assert float((back_project_tiled(sr, lr, 2, iterations=3, tile=16) - whole).abs().max()) > 1e-3
    finally:
        back_projection.REACH_PER_ITERATION = reach


def test_evaluate_tiling_matches_whole_image_inference():
    torch.manual_seed(0)
    net = ESPCN(3, 3, upscale=2, num_feat=8).eval()
    lr = torch.rand(1, 3, 40, 52, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = with_inference_options(net, 2, False, "back_projection", 2)(lr)
        # overlap 16: 4 px of context per side, ESPCN's reach
        tiled = with_inference_options(net, 2, False, "back_projection", 2, tile=24, tile_overlap=16)(lr)
    assert tiled.shape == whole.shape == (1, 3, 80, 104)
    assert float((tiled - whole).abs().max()) < 1 / 255
