"""Shared pytest fixtures and helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # make `import src...` work without installing the package
    sys.path.insert(0, str(REPO_ROOT))


# --- shared data beside the repository (benchmarks, reference numbers) ---------------------------------
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
