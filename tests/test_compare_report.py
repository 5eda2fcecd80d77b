"""Comparing methods: evaluate with a ``methods`` list (one table, comparison crops, perception–distortion plot),
the final held-out summary logged to W&B / CSV, and ``python -m src.report`` over finished runs."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from src.archs import ESPCN
from src.evaluation.report import gather_runs
from src.evaluation.wandb_logs import read_wandb_folder
from src.weights.checkpoints import export_basicsr
from tests.cli_helpers import SMOKE, ok, read_csv
from tests.cli_helpers import run_cli as _run_cli

run_cli = functools.partial(_run_cli, timeout=240)



@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> tuple[Path, Path]:
    """A benchmark folder with two HR images >= 120 px (NIQE needs them; LR generated) and RGB ESPCN x4 weights."""
    from skimage import data

    root = tmp_path_factory.mktemp("bench")
    hr_dir = root / "Tiny" / "HR"
    hr_dir.mkdir(parents=True)
    Image.fromarray(data.astronaut()[60:200, 140:270]).save(hr_dir / "astro.png")
    Image.fromarray(data.coffee()[100:228, 150:280]).save(hr_dir / "coffee.png")
    torch.manual_seed(0)
    weights = export_basicsr(ESPCN(3, 3, 4, num_feat=16).state_dict(), root / "espcn_rgb_x4.pth")
    return root, weights


def methods_arg(weights: Path, extra: str = "") -> str:
    return (f"methods=[{{name: bicubic, model: bicubic}}, {{name: espcn_rgb, model: espcn, weights: {weights}, "
            f"overrides: {{color: rgb, arch: {{num_feat: 16}}}}{extra}}}]")


def test_evaluate_methods_one_table_crops_and_plot(bench, tmp_path):
    root, weights = bench
    proc = ok(run_cli("src.evaluate", methods_arg(weights), f"benchmarks.root={root}", "benchmarks.sets=[Tiny]",
                      "benchmarks.scales=[4]", "metrics.names=[psnr_y,ssim_y,niqe]", "compare.images=[astro.png]",
                      run_dir=tmp_path))
    results = read_csv(tmp_path / "results.csv")
    assert [(r["method"], r["set"], r["scale"], r["num_images"]) for r in results] == [
        ("bicubic", "Tiny", "4", "2"), ("espcn_rgb", "Tiny", "4", "2")]
    assert list(results[0])[:6] == ["method", "set", "scale", "psnr_y", "ssim_y", "niqe"]
    assert 20 < float(results[0]["psnr_y"]) < 40 and float(results[0]["niqe"]) > 0
    assert results[0]["params"] == "0" and int(results[1]["params"]) > 0
    assert len(read_csv(tmp_path / "per_image.csv")) == 4
    md = (tmp_path / "results.md").read_text()
    assert "| bicubic | x4 |" in md and "| espcn_rgb | x4 |" in md and "niqe" in md
    panel = Image.open(tmp_path / "compare" / "Tiny_astro_x4.png")
    assert panel.width > 4 * 96 * 2  # LR | bicubic | espcn_rgb | HR, 96 px crops shown at 2x
    assert (tmp_path / "perception_distortion.png").stat().st_size > 1000
    assert not (tmp_path / "compare" / "Tiny_coffee_x4.png").exists()
    assert "espcn_rgb" in proc.stdout


def test_unknown_method_key_names_the_entry(bench, tmp_path):
    root, weights = bench
    proc = run_cli("src.evaluate", methods_arg(weights, ", weight: x"), f"benchmarks.root={root}",
                   "benchmarks.sets=[Tiny]", run_dir=tmp_path)
    assert proc.returncode == 2
    assert "methods[1].weight" in proc.stderr and "espcn_rgb" in proc.stderr and "Did you mean 'weights'" in proc.stderr
    assert not (tmp_path / "results.csv").exists()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> Path:
    """Two tiny training runs: ESPCN logging to W&B (offline) and CSV, FSRCNN to CSV."""
    runs = tmp_path_factory.mktemp("runs")
    ok(run_cli("src.train", *SMOKE, "model=espcn", "logger=[wandb,csv]", run_dir=runs / "a"))
    ok(run_cli("src.train", *SMOKE, "model=fsrcnn", run_dir=runs / "b"))
    return runs


def test_training_logs_final_summary(two_runs):
    results = {r["method"]: r for r in read_csv(two_runs / "a" / "results.csv")}
    (folder,) = (two_runs / "a" / "wandb").glob("offline-run-*")
    run = read_wandb_folder(folder)
    assert abs(run.summary["test/sample/psnr_y"] - float(results["espcn"]["psnr_y"])) < 1e-3
    assert abs(run.summary["test/sample/ssim_y"] - float(results["espcn"]["ssim_y"])) < 1e-3
    assert run.summary["test/results"]["_type"] == "table-file" and run.summary["test/results"]["nrows"] == 2
    assert run.config["model"]["name"] == "espcn" and run.config["scale"] == 4
    metrics = read_csv(two_runs / "b" / "csv" / "metrics.csv")
    assert any(r.get("test/sample/psnr_y") for r in metrics)


def test_report_from_two_runs(two_runs, tmp_path):
    proc = ok(run_cli("src.report", f"runs={two_runs}", f"output={tmp_path / 'report'}", run_dir=tmp_path / "job"))
    rows = read_csv(tmp_path / "report" / "report.csv")
    assert [(r["run"], r["method"], r["set"], r["scale"]) for r in rows] == [
        ("a", "espcn", "sample", "4"), ("a", "bicubic", "sample", "4"),
        ("b", "fsrcnn", "sample", "4"), ("b", "bicubic", "sample", "4")]
    assert all(r["source"] == "results.csv" for r in rows)
    assert rows[0]["wandb_id"] and not rows[2]["wandb_id"]  # run a's offline W&B run is linked, not repeated
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| a | espcn | sample | x4 |" in md and "| b | fsrcnn | sample | x4 |" in md
    assert "| b | fsrcnn |" in proc.stdout
    assert list((tmp_path / "report").glob("*.png"))


def test_report_reads_offline_wandb_runs(two_runs, tmp_path):
    """A W&B offline run folder on its own (no results.csv beside it): rows from its test/<set>/<metric>."""
    shutil.copytree(two_runs / "a" / "wandb", tmp_path / "synced" / "espcn_run" / "wandb")
    rows = gather_runs(tmp_path / "synced")
    assert [(r.run, r.source, r.method, r.set, r.scale) for r in rows] == [
        ("espcn_run", "wandb-offline", "espcn", "sample", 4)]
    expected = float(read_csv(two_runs / "a" / "results.csv")[0]["psnr_y"])
    assert abs(rows[0].values["psnr_y"] - expected) < 1e-3


def test_report_on_wandb_project_without_api_key(tmp_path):
    proc = run_cli("src.report", "runs=some-entity/some-project", run_dir=tmp_path,
                   NETRC=str(tmp_path / "no_netrc"))
    assert proc.returncode == 2
    assert "W&B API key" in proc.stderr and "network" in proc.stderr
