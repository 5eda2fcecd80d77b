"""Regenerate ``src/metrics/data/niqe_pris_params.npz`` from the official NIQE ``modelparameters.mat``.

Usage (from the repository root)::

    python experiments/metrics/make_niqe_params.py [path/to/modelparameters.mat]

The default input is ``../shared/weights/niqe_modelparameters.mat`` (see ``../shared/weights/SOURCES.md``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.io

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MAT = REPO.parent / "shared" / "weights" / "niqe_modelparameters.mat"
OUT = REPO / "src" / "metrics" / "data" / "niqe_pris_params.npz"


def main(mat_path: Path = DEFAULT_MAT) -> None:
    mat = scipy.io.loadmat(str(mat_path))
    mu = np.asarray(mat["mu_prisparam"], dtype=np.float64).reshape(-1)
    cov = np.asarray(mat["cov_prisparam"], dtype=np.float64)
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise ValueError(f"unexpected shapes: mu {mu.shape}, cov {cov.shape}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(OUT, mu_prisparam=mu, cov_prisparam=cov)
    print(f"wrote {OUT} (mu {mu.shape}, cov {cov.shape})")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_MAT)
