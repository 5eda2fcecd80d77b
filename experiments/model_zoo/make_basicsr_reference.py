"""Generate the BasicSR reference files checked by ``tests/test_basicsr_reference.py``.

For small configurations of every network that BasicSR ships (EDSR, RCAN, RRDBNet, MSRResNet, SRVGGNetCompact,
VGGStyleDiscriminator, UNetDiscriminatorSN) this builds BasicSR's own module, draws random weights, runs it on a
random input and saves ``{arch, config, state_dict, input_u8, output[, output_train]}`` to
``tests/data/basicsr_reference/<name>.pt``. The tests then build our class with the same ``config``, load the
state dict with ``strict=True`` and compare outputs.

BasicSR is NOT a project dependency; this script needs its source on ``PYTHONPATH`` (or ``--basicsr-root``)::

    .venv/bin/pip download --no-deps basicsr==1.4.2 -d /tmp/bsr_dl
    mkdir -p /tmp/bsr_src && tar xzf /tmp/bsr_dl/basicsr-1.4.2.tar.gz -C /tmp/bsr_src
    OMP_NUM_THREADS=1 PYTHONPATH=/tmp/bsr_src/basicsr-1.4.2 .venv/bin/python \\
        experiments/model_zoo/make_basicsr_reference.py

Only the ``basicsr/archs/*_arch.py`` files needed are executed, loaded by file path; ``basicsr/__init__.py`` and
``basicsr/archs/__init__.py`` (which import cv2, ``torchvision.transforms.functional_tensor`` and every arch) are
bypassed by registering stand-in package modules, and ``basicsr.ops.dcn`` (a CUDA extension, unused by these
networks) and ``basicsr.utils`` (only ``get_root_logger`` is needed) are stubbed. BasicSR's real
``utils/registry.py`` is used. Real-ESRGAN 0.3.0's ``srvgg_arch.py`` and ``discriminator_arch.py`` are identical
to BasicSR 1.4.2's apart from the registry decorator, so these references cover Real-ESRGAN's networks too.

What makes the references discriminative:
- every weight is redrawn at unit gain (Kaiming-uniform), biases in [-0.1, 0.1], PReLU slopes in [0.05, 0.5] and
  batch-norm affine parameters and running statistics away from their (1, 0) defaults, so no branch is
  negligible (BasicSR's 0.1-scaled init would hide errors in residual branches);
- every parameter and buffer is rounded to float16 values before the reference forward pass, so the files
  store them as float16 exactly (half the size); the input is an 8-bit image, stored as uint8 ``input_u8`` and
  fed as ``input_u8.float() / 255``; outputs are float32;
- spectral norm's ``weight_u`` / ``weight_v`` are first converged by 30 training-mode passes;
- discriminators also store ``output_train``: the first training-mode forward pass from the saved state (batch
  statistics in batch norm; one power iteration in spectral norm).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import sys
import types
from pathlib import Path

import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = REPO_ROOT / "tests" / "data" / "basicsr_reference"

# name -> (BasicSR arch file, class name, constructor kwargs, input shape, also store a training-mode output)
CONFIGS: dict[str, tuple[str, str, dict, tuple[int, ...], bool]] = {}


def _add(name: str, module: str, cls: str, config: dict, shape: tuple[int, ...], train: bool = False) -> None:
    CONFIGS[name] = (module, cls, config, shape, train)


for _s in (2, 3, 4):
    _add(
        f"edsr_x{_s}",
        "edsr_arch",
        "EDSR",
        dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, upscale=_s, res_scale=0.1),
        (1, 3, 10, 9),
    )
_add(
    "edsr_x2_range1_mean",
    "edsr_arch",
    "EDSR",
    dict(
        num_in_ch=3,
        num_out_ch=3,
        num_feat=8,
        num_block=1,
        upscale=2,
        res_scale=1.0,
        img_range=1.0,
        rgb_mean=[0.5, 0.25, 0.125],
    ),
    (2, 3, 10, 11),
)
for _s in (2, 3, 4):
    _add(
        f"rcan_x{_s}",
        "rcan_arch",
        "RCAN",
        dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_group=2, num_block=2, squeeze_factor=2, upscale=_s),
        (1, 3, 8, 9),
    )
_add(
    "rcan_x2_res_scale",
    "rcan_arch",
    "RCAN",
    dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_group=1, num_block=2, squeeze_factor=2, upscale=2, res_scale=0.5),
    (1, 3, 9, 8),
)
for _s in (1, 2, 4):
    _add(
        f"rrdbnet_x{_s}",
        "rrdbnet_arch",
        "RRDBNet",
        dict(num_in_ch=3, num_out_ch=3, scale=_s, num_feat=8, num_block=2 if _s == 4 else 1, num_grow_ch=4),
        (1, 3, 8, 12),
    )
for _s in (2, 3, 4):
    _add(
        f"msrresnet_x{_s}",
        "srresnet_arch",
        "MSRResNet",
        dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, upscale=_s),
        (1, 3, 9, 8),
    )
for _act in ("prelu", "relu", "leakyrelu"):
    _add(
        f"srvgg_{_act}_x4",
        "srvgg_arch",
        "SRVGGNetCompact",
        dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=3, upscale=4, act_type=_act),
        (1, 3, 8, 9),
    )
_add(
    "srvgg_prelu_x3",
    "srvgg_arch",
    "SRVGGNetCompact",
    dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=3, act_type="prelu"),
    (1, 3, 9, 10),
)
_add(
    "vgg_disc_128",
    "discriminator_arch",
    "VGGStyleDiscriminator",
    dict(num_in_ch=3, num_feat=2, input_size=128),
    (1, 3, 128, 128),
    train=True,
)
_add(
    "vgg_disc_256",
    "discriminator_arch",
    "VGGStyleDiscriminator",
    dict(num_in_ch=1, num_feat=2, input_size=256),
    (1, 1, 256, 256),
    train=True,
)
_add(
    "unet_disc_sn",
    "discriminator_arch",
    "UNetDiscriminatorSN",
    dict(num_in_ch=3, num_feat=4, skip_connection=True),
    (2, 3, 24, 16),
    train=True,
)
_add(
    "unet_disc_sn_noskip",
    "discriminator_arch",
    "UNetDiscriminatorSN",
    dict(num_in_ch=3, num_feat=4, skip_connection=False),
    (1, 3, 16, 16),
    train=True,
)


def _find_basicsr_root(cli_root: str | None) -> Path:
    if cli_root:
        root = Path(cli_root)
    else:
        spec = importlib.util.find_spec("basicsr")  # locates the package without running its __init__
        if spec is None or not spec.submodule_search_locations:
            sys.exit("basicsr not found: put its source on PYTHONPATH or pass --basicsr-root (see the docstring)")
        root = Path(next(iter(spec.submodule_search_locations))).parent
    if not (root / "basicsr" / "archs" / "arch_util.py").is_file():
        sys.exit(f"{root} does not contain basicsr/archs/arch_util.py")
    return root


def _load_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_basicsr_archs(root: Path) -> tuple[dict[str, types.ModuleType], str]:
    """Import the needed ``basicsr.archs.*_arch`` modules by file path; returns them and BasicSR's version."""
    pkg = root / "basicsr"
    for name, path in (
        ("basicsr", pkg),
        ("basicsr.archs", pkg / "archs"),
        ("basicsr.utils", pkg / "utils"),
        ("basicsr.ops", pkg / "ops"),
    ):
        module = types.ModuleType(name)
        module.__path__ = [str(path)]  # a package, so relative imports inside the arch files resolve
        sys.modules[name] = module
    sys.modules["basicsr.utils"].get_root_logger = lambda *a, **k: logging.getLogger("basicsr")
    dcn = types.ModuleType("basicsr.ops.dcn")
    dcn.ModulatedDeformConvPack = nn.Module  # only subclassed by DCNv2Pack, which we never build
    dcn.modulated_deform_conv = None
    sys.modules["basicsr.ops.dcn"] = dcn
    _load_file("basicsr.utils.registry", pkg / "utils" / "registry.py")
    _load_file("basicsr.archs.arch_util", pkg / "archs" / "arch_util.py")
    modules = {
        m: _load_file(f"basicsr.archs.{m}", pkg / "archs" / f"{m}.py")
        for m in sorted({cfg[0] for cfg in CONFIGS.values()})
    }
    version_file = root / "VERSION"
    version = version_file.read_text().strip() if version_file.is_file() else "unknown"
    return modules, version


@torch.no_grad()
def randomise(net: nn.Module, gen: torch.Generator) -> None:
    """Redraw every parameter / buffer (see the module docstring), then round all of them to float16 values."""

    def uniform(t: torch.Tensor, lo: float, hi: float) -> None:
        t.copy_(torch.rand(t.shape, generator=gen) * (hi - lo) + lo)

    for module in net.modules():
        for pname, p in module.named_parameters(recurse=False):
            if isinstance(module, nn.PReLU):
                uniform(p, 0.05, 0.5)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                uniform(p, 0.5, 1.5) if pname == "weight" else uniform(p, -0.2, 0.2)
            elif p.dim() > 1:  # conv / linear weight (``weight_orig`` under spectral norm)
                bound = math.sqrt(6.0 / (p.numel() // p.shape[0]))
                uniform(p, -bound, bound)
            else:
                uniform(p, -0.1, 0.1)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            uniform(module.running_mean, -0.2, 0.2)
            uniform(module.running_var, 0.5, 1.5)
    for t in list(net.parameters()) + list(net.buffers()):
        if t.is_floating_point():
            t.copy_(t.half().float())


def make_reference(name: str, modules: dict[str, types.ModuleType], version: str, seed: int) -> dict:
    module, cls, config, shape, train = CONFIGS[name]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = getattr(modules[module], cls)(**config)
    randomise(net, gen)
    if any(k.endswith("weight_u") for k in net.state_dict()):
        # converge spectral norm's power iteration (u, v) so that eval-mode outputs have a sane magnitude
        net.train()
        with torch.no_grad():
            for _ in range(30):
                net(torch.rand(shape, generator=gen))
        for t in net.buffers():
            t.copy_(t.half().float())
    state = {
        k: (v.detach().clone().half() if v.is_floating_point() else v.detach().clone())
        for k, v in net.state_dict().items()
    }
    x_u8 = torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
    x = x_u8.float() / 255.0
    net.eval()
    with torch.no_grad():
        out = net(x.clone()).float()
    ref = {
        "arch": cls,
        "config": config,
        "state_dict": state,
        "input_u8": x_u8,
        "output": out,
        "basicsr_version": version,
        "torch_version": str(torch.__version__),
    }
    if train:
        net.train()
        with torch.no_grad():
            ref["output_train"] = net(x.clone()).float()
    return ref


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--basicsr-root", help="folder that contains basicsr/ (default: found on PYTHONPATH)")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    torch.set_num_threads(1)
    modules, version = load_basicsr_archs(_find_basicsr_root(args.basicsr_root))
    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for seed, name in enumerate(CONFIGS):
        path = args.out / f"{name}.pt"
        torch.save(make_reference(name, modules, version, seed), path)
        total += path.stat().st_size
        print(
            f"{path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}: "
            f"{path.stat().st_size / 1024:.1f} KiB"
        )
    print(f"{len(CONFIGS)} files, {total / 1024:.1f} KiB, BasicSR {version}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
