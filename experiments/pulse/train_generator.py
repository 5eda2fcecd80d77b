"""Train the small face generator of the PULSE demonstration: a :class:`src.archs.DCGANGenerator` (64-d latent,
24x24 gray) on the faces of scikit-image's ``lfw_subset``, with nothing to download.

``skimage.data.lfw_subset()`` is 200 gray 25x25 crops: the first 100 are faces, the last 100 are not (background
patches), so only the 100 faces are used, cropped to 24x24 (last row and column dropped: no resampling). Faces
90-99 are held out for the PULSE runs; the generator sees faces 0-89 and their mirror images.

GAN recipe: non-saturating logistic loss, lazy R1 penalty (γ = 1, every 8 steps) on real images, Adam 2e-4
(β = 0.5, 0.999), batch 32, EMA (0.995) of the generator weights, which is what is saved. Writes
``<out>/generator.pt`` ({arch, state_dict}: the suite's generator file, read by ``src.pulse``),
``<out>/samples.png`` (64 samples) and ``<out>/train_log.csv``.

    OMP_NUM_THREADS=1 nice .venv/bin/python experiments/pulse/train_generator.py --out outputs/pulse_demo --steps 2000
"""

from __future__ import annotations

import argparse
import copy
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from src.archs import DCGANGenerator  # noqa: E402
from src.methods.pulse import save_generator  # noqa: E402

ARCH = {"_target_": "src.archs.DCGANGenerator", "latent_dim": 64, "channels": 1, "base_size": 3,
        "num_upsamples": 3, "num_feat": 16}
R1_EVERY = 8  # lazy R1 (StyleGAN2): every 8 steps, weighted by 8
EMA = 0.995  # generator weight averaging (half-life ~140 steps)
HELD_OUT = range(90, 100)


def lfw_faces() -> torch.Tensor:
    """The 100 faces of ``lfw_subset`` as (100, 1, 24, 24) float32 in [0, 1]."""
    from skimage.data import lfw_subset

    faces = lfw_subset()[:100, :24, :24]
    return torch.from_numpy(np.ascontiguousarray(faces, dtype=np.float32)).unsqueeze(1)


class Discriminator(nn.Module):
    """24 -> 12 -> 6 -> 3 strided convs with leaky ReLU, then a linear score."""

    def __init__(self, channels: int = 1, num_feat: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, num_feat, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(num_feat, num_feat * 2, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(num_feat * 2, num_feat * 4, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(num_feat * 4, num_feat * 4, 4, 2, 1), nn.LeakyReLU(0.2),
        )
        self.head = nn.Linear(num_feat * 4 * 9, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).flatten(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    faces = lfw_faces()
    train = faces[[i for i in range(100) if i not in HELD_OUT]]
    train = torch.cat([train, train.flip(-1)]) * 2 - 1  # [-1, 1], mirrored
    g = DCGANGenerator(**{k: v for k, v in ARCH.items() if k != "_target_"})
    d = Discriminator()
    g_ema = copy.deepcopy(g).eval()
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    log = []
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        real = train[torch.randint(len(train), (args.batch,))]
        shift = torch.randint(-1, 2, (2,))  # ±1 px translations
        real = torch.roll(real, (int(shift[0]), int(shift[1])), dims=(-2, -1))
        z = torch.randn(args.batch, ARCH["latent_dim"])
        # discriminator: logistic loss + R1 on the reals
        r1 = step % R1_EVERY == 0
        real.requires_grad_(r1)
        d_real = d(real)
        d_fake = d(g(z).detach())
        d_loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        if r1:
            (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            d_loss = d_loss + 0.5 * R1_EVERY * grad.square().sum((1, 2, 3)).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # generator: non-saturating
        g_loss = F.softplus(-d(g(torch.randn(args.batch, ARCH["latent_dim"])))).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        with torch.no_grad():
            for pe, p in zip(g_ema.parameters(), g.parameters()):
                pe.lerp_(p, 1 - EMA)
            for be, b in zip(g_ema.buffers(), g.buffers()):
                be.copy_(b)
        if step % 50 == 0 or step == args.steps:
            row = {"step": step, "d_loss": round(d_loss.item(), 4), "g_loss": round(g_loss.item(), 4),
                   "seconds": round(time.perf_counter() - start, 1)}
            log.append(row)
            print(row, flush=True)
        if step % 250 == 0 or step == args.steps:  # a usable generator at any time
            save_generator(args.out / "generator.pt", ARCH, g_ema)
    with open(args.out / "train_log.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(log[0]))
        writer.writeheader()
        writer.writerows(log)
    from PIL import Image

    with torch.no_grad():
        samples = (g_ema(torch.randn(64, ARCH["latent_dim"])) + 1) / 2
    grid = samples.clamp(0, 1).view(8, 8, 24, 24).permute(0, 2, 1, 3).reshape(192, 192)
    Image.fromarray((grid.numpy() * 255).round().astype(np.uint8)).resize((384, 384), Image.NEAREST).save(
        args.out / "samples.png")
    print(f"wrote {args.out}/generator.pt in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
