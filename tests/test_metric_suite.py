"""Metric selection (metrics.names): per-image values, set-level RMSE / PI, config errors, CSV columns."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from src.evaluation.results import ImageScore, summarize, write_csv
from src.metrics import niqe, psnr, rmse_y
from src.metrics.suite import MetricSuite, build_metric_suite


def pair(seed: int, size: int = 120) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(3, size, size, generator=g)
    return (hr + 0.05 * torch.randn(3, size, size, generator=g)).clamp(0, 1), hr


def test_psnr_ssim_always_and_values_match_the_metric_functions():
    suite = MetricSuite(names=["niqe", "psnr_rgb"])
    assert suite.names == ("psnr_y", "ssim_y", "niqe", "psnr_rgb")
    sr, hr = pair(0)
    values = suite.score(sr, hr, scale=2)
    assert values["psnr_y"] == psnr(sr, hr, 2)
    assert values["psnr_rgb"] == psnr(sr, hr, 2, channel="rgb")
    assert values["niqe"] == niqe(sr, crop_border=4)


def test_set_level_rmse_and_pi_as_pirm_defines_them():
    suite = MetricSuite(names=["rmse", "pi"])
    pairs = [pair(1), pair(2)]
    per_image = [suite.score(sr, hr, scale=4) for sr, hr in pairs]
    assert "rmse" not in per_image[0] and "_mse_y" in per_image[0]
    values, notes = suite.aggregate(per_image)
    assert values["rmse"] == pytest.approx(rmse_y([p[0] for p in pairs], [p[1] for p in pairs], crop_border=4))
    assert values["pi"] is None and "PI = n/a" in notes["pi"]  # never PI from NIQE alone
    assert math.isclose(values["psnr_y"], (per_image[0]["psnr_y"] + per_image[1]["psnr_y"]) / 2)


def test_pi_formula_with_ma_values():
    suite = MetricSuite(names=["pi"], ma_model="model.mat")
    values, notes = suite.aggregate([{"psnr_y": 1, "ssim_y": 1, "niqe": 4.0, "_ma": 8.0},
                                     {"psnr_y": 1, "ssim_y": 1, "niqe": 6.0, "_ma": 6.0}])
    assert values["pi"] == pytest.approx(((10 - 7.0) + 5.0) / 2) and not notes


def test_config_errors():
    with pytest.raises(ValueError, match="unknown.*'fid'"):
        MetricSuite(names=["fid"])
    with pytest.raises(ValueError, match="ma_model"):
        MetricSuite(names=["ma"])
    with pytest.raises(ValueError, match="metrics.lpips_nett"):
        build_metric_suite({"names": ["psnr_y"], "lpips_nett": "vgg"})


def test_csv_has_a_column_per_metric(tmp_path):
    suite = MetricSuite(names=["rmse", "pi"])
    sr, hr = pair(3)
    scores = [ImageScore("m", "S", 4, "a.png", suite.score(sr, hr, 4))]
    write_csv(summarize(scores, suite), tmp_path / "results.csv")
    write_csv(scores, tmp_path / "per_image.csv")
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert list(rows[0]) == ["method", "set", "scale", "psnr_y", "ssim_y", "niqe", "rmse", "pi", "num_images", "notes"]
    assert rows[0]["pi"] == "n/a" and "Ma model" in rows[0]["notes"]
    per_image = list(csv.DictReader((tmp_path / "per_image.csv").open()))
    assert list(per_image[0]) == ["method", "set", "scale", "image", "psnr_y", "ssim_y", "niqe"]  # helpers hidden
