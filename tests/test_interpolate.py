"""Network interpolation: exact endpoints, the formula in between, the CLI with a series and evaluation."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from src.archs import ESPCN
from src.config.validation import ConfigError
from src.weights.checkpoints import export_basicsr
from src.weights.interpolation import interpolate_state

REPO = Path(__file__).resolve().parents[1]


def two_nets(tmp_path: Path) -> tuple[Path, Path, dict, dict]:
    torch.manual_seed(0)
    a, b = ESPCN(3, 3, 2, num_feat=8).state_dict(), ESPCN(3, 3, 2, num_feat=8).state_dict()
    return export_basicsr(a, tmp_path / "a.pth"), export_basicsr(b, tmp_path / "b.pth"), a, b


def test_endpoints_exact_and_midpoint(tmp_path):
    _, _, a, b = two_nets(tmp_path)
    assert all(torch.equal(interpolate_state(a, b, 0.0)[k], a[k]) for k in a)
    assert all(torch.equal(interpolate_state(a, b, 1.0)[k], b[k]) for k in a)
    mid = interpolate_state(a, b, 0.8)
    assert torch.allclose(mid["conv1.weight"], 0.2 * a["conv1.weight"] + 0.8 * b["conv1.weight"], atol=1e-7)
    with pytest.raises(ConfigError, match="different keys"):
        interpolate_state(a, {k: v for k, v in b.items() if k != "conv1.bias"}, 0.5)


def test_cli_series_with_evaluation(tmp_path):
    from PIL import Image
    from skimage import data

    path_a, path_b, a, b = two_nets(tmp_path)
    hr = tmp_path / "bench" / "Tiny" / "HR"
    hr.mkdir(parents=True)
    Image.fromarray(data.astronaut()[:120, :120]).save(hr / "astro.png")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "src.interpolate", "model=espcn", "model.color=rgb", "model.arch.num_feat=8",
            "scale=2", f"a={path_a}", f"b={path_b}", "alphas=[0,0.5,1]", f"output={tmp_path / 'series'}",
            "evaluate=true", f"benchmarks.root={tmp_path / 'bench'}", "benchmarks.sets=[Tiny]",
            f"hydra.run.dir={tmp_path / 'run'}"]
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted((tmp_path / "series").glob("*.pth"))
    assert [f.name for f in files] == ["espcn_alpha0.00.pth", "espcn_alpha0.50.pth", "espcn_alpha1.00.pth"]
    first = torch.load(files[0], weights_only=True)["params"]
    assert all(torch.equal(first[k], a[k]) for k in a)
    rows = list(csv.DictReader((tmp_path / "run" / "interpolation.csv").open()))
    assert [r["method"] for r in rows] == ["espcn_a0.00", "espcn_a0.50", "espcn_a1.00"]
    assert all(float(r["niqe"]) > 0 for r in rows)
    assert (tmp_path / "run" / "perception_distortion.png").is_file()
    again = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert again.returncode == 2 and "overwrite=true" in again.stderr  # never overwrites silently
