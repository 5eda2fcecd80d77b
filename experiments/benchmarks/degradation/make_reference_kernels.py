"""Generate ``tests/data/realesrgan_reference/kernels.pt``: blur kernels made by Real-ESRGAN's own code.

BasicSR 1.4.2's ``basicsr/data/degradations.py`` (the file Real-ESRGAN trains with) is loaded by file path and
its kernel functions (``bivariate_Gaussian``, ``bivariate_generalized_Gaussian``, ``bivariate_plateau``,
``circular_lowpass_kernel``) are called for a fixed list of parameters. The module imports ``cv2`` and
``torchvision.transforms.functional_tensor`` at the top but the kernel functions use neither, so both are stubbed.
BasicSR is NOT a project dependency::

    .venv/bin/pip download --no-deps basicsr==1.4.2 -d /tmp/bsr_dl
    mkdir -p /tmp/bsr_pkg && tar xzf /tmp/bsr_dl/basicsr-1.4.2.tar.gz -C /tmp/bsr_pkg
    OMP_NUM_THREADS=1 .venv/bin/python experiments/benchmarks/degradation/make_reference_kernels.py \\
        --basicsr-root /tmp/bsr_pkg/basicsr-1.4.2

The file holds ``{"cases": [{"fn", "args", "kwargs"}...], "kernels": [float32 tensors]}`` (float64 results
rounded to float32: 3e-8 at most, far below the 1e-6 tolerance of the test).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import types
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[3]
OUT = REPO / "tests" / "data" / "realesrgan_reference" / "kernels.pt"


def load_reference(basicsr_root: Path) -> types.ModuleType:
    path = basicsr_root / "basicsr" / "data" / "degradations.py"
    if not path.is_file():
        raise SystemExit(f"not found: {path} (see the module docstring for how to fetch BasicSR 1.4.2)")
    stubs = {"cv2": types.ModuleType("cv2"), "torchvision.transforms.functional_tensor": types.ModuleType("ft")}
    stubs["torchvision.transforms.functional_tensor"].rgb_to_grayscale = None
    saved = {name: sys.modules.get(name) for name in stubs}
    sys.modules.update(stubs)
    try:
        spec = importlib.util.spec_from_file_location("bsr_degradations", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    return module


def cases() -> list[tuple[str, tuple, dict]]:
    out: list[tuple[str, tuple, dict]] = []
    for k in (7, 13, 21):
        for sx, sy, theta in ((0.2, 0.2, 0.0), (1.3, 1.3, 0.0), (3.0, 3.0, 0.0)):
            out.append(("bivariate_Gaussian", (k, sx, sy, theta), {"isotropic": True}))
        for sx, sy, theta in ((0.7, 2.9, 0.4), (2.5, 0.9, -2.1), (3.0, 1.5, math.pi / 2), (0.3, 2.2, 3.0)):
            out.append(("bivariate_Gaussian", (k, sx, sy, theta), {"isotropic": False}))
        for sx, sy, theta, beta in ((1.1, 1.1, 0.0, 0.5), (2.4, 0.8, 1.2, 3.7), (0.6, 1.9, -0.7, 1.0)):
            iso = sx == sy
            out.append(("bivariate_generalized_Gaussian", (k, sx, sy, theta, beta), {"isotropic": iso}))
        for sx, sy, theta, beta in ((1.6, 1.6, 0.0, 1.0), (2.8, 1.2, 2.5, 1.7), (0.5, 2.0, -1.4, 1.3)):
            iso = sx == sy
            out.append(("bivariate_plateau", (k, sx, sy, theta, beta), {"isotropic": iso}))
        for cutoff in (math.pi / 5, 1.3, math.pi / 3 + 0.5, math.pi):
            out.append(("circular_lowpass_kernel", (cutoff, k), {"pad_to": 0}))
    out.append(("circular_lowpass_kernel", (1.7, 9), {"pad_to": 21}))
    out.append(("circular_lowpass_kernel", (2.9, 15), {"pad_to": 21}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--basicsr-root", type=Path, default=Path("/tmp/bsr_pkg/basicsr-1.4.2"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    ref = load_reference(args.basicsr_root)
    records, kernels = [], []
    for fn, fargs, kwargs in cases():
        kernel = getattr(ref, fn)(*fargs, **kwargs)
        records.append({"fn": fn, "args": list(fargs), "kwargs": kwargs})
        kernels.append(torch.from_numpy(kernel).float())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"source": "basicsr 1.4.2 basicsr/data/degradations.py", "cases": records, "kernels": kernels},
               args.out)
    print(f"wrote {len(kernels)} kernels to {args.out} ({args.out.stat().st_size / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
