"""Shared pytest fixtures and helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # make `import src...` work without installing the package
    sys.path.insert(0, str(REPO_ROOT))


# --- benchmark sets shipped in the repository (Set5, Set14: HR + MATLAB-bicubic LR x2/x3/x4) -----------------
BENCHMARKS = REPO_ROOT / "benchmarks"


@pytest.fixture(scope="session")
def benchmarks_root() -> Path:
    """The repository's ``benchmarks/`` folder (Set5, Set14, ``published_bicubic_per_image.csv``)."""
    assert (BENCHMARKS / "Set5" / "HR").is_dir(), f"the shipped benchmark sets are missing: {BENCHMARKS}"
    return BENCHMARKS


# --- data beside the repository (T91/BSD200 photos, third-party weights) ------------------------------------
def shared_dir() -> Path:
    """``<repo>/../shared``; skips the calling test when that folder is absent."""
    path = REPO_ROOT.parent / "shared"
    if not path.is_dir():
        pytest.skip(f"../shared not found beside the repo: {path}")
    return path


@pytest.fixture(scope="session")
def shared_root() -> Path:
    """The ``../shared`` folder beside the repository (the test is skipped when it is absent)."""
    return shared_dir()


# --- one torch thread per test ---------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run in-process tests on one intra-op thread. On the 2-core machine a busy core (another process, a
    subprocess test's workers) makes every multi-threaded elementwise op wait on the other thread, up to ~100x
    slower; the tensors in unit tests are too small to gain from a second thread anyway."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
