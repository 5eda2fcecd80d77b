"""Generate ``tests/data/stylegan2_reference.pt``: outputs of rosinality's ``stylegan2-pytorch`` ``Generator``
(its own ``model.py``, run on the CPU) for seeded random weights, checked by ``tests/test_stylegan2.py`` against
``src.archs.StyleGAN2Generator``.

rosinality's code is NOT a project dependency. Point ``--repo`` at a clone of
https://github.com/rosinality/stylegan2-pytorch (tested at commit bef283a)::

    git clone https://github.com/rosinality/stylegan2-pytorch /tmp/sg2
    OMP_NUM_THREADS=1 .venv/bin/python experiments/pulse/make_stylegan2_reference.py --repo /tmp/sg2

Its ``op`` package compiles CUDA extensions at import (``torch.utils.cpp_extension.load``); on the CPU its code
never calls them (``upfirdn2d`` -> ``upfirdn2d_native``, ``fused_leaky_relu`` -> its leaky-ReLU branch,
``conv2d_gradfix`` -> ``F.conv2d``), so ``load`` is replaced by a stand-in during the import and the reference is
rosinality's own arithmetic.

The file stores no weights (16 px at rosinality's fixed 512 channels is 12M parameters): it stores the key
layout (names and shapes, in rosinality's order) and a seed; :func:`draw_state_dict` redraws the same values.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import torch

CONFIG = {"size": 16, "style_dim": 32, "n_mlp": 2, "channel_multiplier": 2}
SEED = 2020
OUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "stylegan2_reference.pt"


def draw_state_dict(layout: list[tuple[str, tuple[int, ...]]], seed: int) -> dict[str, torch.Tensor]:
    """Seeded values for every key of ``layout``: unit normals for weights, the constant input and noise maps;
    biases and noise strengths N(0, 0.1²) (away from their zero init, so every branch counts); modulation biases
    1 + N(0, 0.1²); the blur FIR buffers (``*.kernel``) are left out: they are fixed by the architecture."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in layout:
        if name.endswith(".kernel"):
            continue
        value = torch.randn(shape, generator=gen)
        if name.endswith("modulation.bias"):
            value = 1.0 + 0.1 * value
        elif name.endswith("bias") or name.endswith("noise.weight"):
            value = 0.1 * value
        state[name] = value
    return state


def load_rosinality(repo: Path):
    """rosinality's ``model`` module, imported from ``repo`` with the CUDA build stubbed out."""
    import torch.utils.cpp_extension as cpp

    real_load = cpp.load
    cpp.load = lambda *a, **k: types.SimpleNamespace()
    sys.path.insert(0, str(repo))
    try:
        import model  # noqa: PLC0415 - rosinality's model.py
    finally:
        cpp.load = real_load
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help="clone of rosinality/stylegan2-pytorch")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_rosinality(args.repo)
    g = model.Generator(CONFIG["size"], CONFIG["style_dim"], CONFIG["n_mlp"],
                        channel_multiplier=CONFIG["channel_multiplier"]).eval()
    layout = [(k, tuple(v.shape)) for k, v in g.state_dict().items()]
    missing, unexpected = g.load_state_dict(draw_state_dict(layout, SEED), strict=False)
    assert all(k.endswith(".kernel") for k in missing) and not unexpected
    gen = torch.Generator().manual_seed(SEED + 1)
    z = torch.randn(2, CONFIG["style_dim"], generator=gen)
    latents = torch.randn(2, g.n_latent, CONFIG["style_dim"], generator=gen)
    noise = [torch.randn(2, 1, *s[-2:], generator=gen) for s in
             [tuple(getattr(g.noises, f"noise_{i}").shape) for i in range(g.num_layers)]]
    with torch.no_grad():
        w = g.style(z)
        image, _ = g([latents], input_is_latent=True, noise=noise)
        image_stored, _ = g([w], input_is_latent=True, randomize_noise=False)  # the stored noise buffers
    torch.save({
        "config": CONFIG, "seed": SEED, "layout": layout, "z": z, "w": w, "latents": latents, "noise": noise,
        "image": image, "image_w_stored_noise": image_stored,
        "kernels": {k: v for k, v in g.state_dict().items() if k.endswith(".kernel")},
    }, args.out)
    print(f"wrote {args.out}: {len(layout)} keys, image std {image.std():.4f}")


if __name__ == "__main__":
    main()
