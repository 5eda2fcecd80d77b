"""The CPU half of ``make gpu-check`` (experiments/gpu_check/gpu_check.py --cpu): loss checks under bf16
autocast, CPU determinism and a smoke training step, within a time budget; a report table on disk."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "gpu_check" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_cpu_half_passes_and_writes_the_report(tmp_path):
    """~15 s on two idle cores; on a loaded machine later checks are skipped (listed as such), none may fail."""
    out = tmp_path / "report.md"
    assert _load().main(["--cpu", "--budget", "25", "--out", str(out)]) == 0
    rows = [line.split(" | ") for line in out.read_text().splitlines() if line.startswith("| ") and "---" not in line]
    results = {r[0].lstrip("| "): r[1] for r in rows[1:]}
    assert len([k for k in results if k.startswith("losses/")]) == 14
    assert {k.split("/")[0] for k in results} == {"losses", "determinism", "smoke"}
    assert set(results.values()) <= {"pass", "skipped"} and "pass" in results.values()
    assert results["losses/pixel_l1/bfloat16"] == "pass"  # the first check always runs


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_gpu_mode_without_a_gpu_is_one_error(capsys):
    assert _load().main([]) == 2
    assert capsys.readouterr().err.startswith("error: no CUDA device")
