"""Example images for the README's "Degradations" section, made by ``python -m src.degrade``.

Writes ``examples/astronaut_hr.png`` (a 256 x 256 crop of scikit-image's astronaut), the LR images of
``src.degrade`` for ``degradation=bicubic|classical|realesrgan`` at x4 (seed 0; 3 Real-ESRGAN draws, 2
classical) and ``examples/panel.png``: HR | LR images enlarged 4x with nearest neighbour, side by side.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/benchmarks/degradation/make_examples.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[3]
OUT = Path(__file__).resolve().parent / "examples"
RUNS = [("bicubic", 1), ("classical", 2), ("realesrgan", 3)]


def main() -> None:
    from skimage import data

    OUT.mkdir(exist_ok=True)
    hr_path = OUT / "astronaut_hr.png"
    Image.fromarray(data.astronaut()[16:272, 120:376]).save(hr_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name, count in RUNS:
        subprocess.run(
            [sys.executable, "-m", "src.degrade", f"input={hr_path}", f"output={OUT}", f"degradation={name}",
             "scale=4", "seed=0", f"count={count}", "overwrite=true", f"hydra.run.dir={OUT / '.run'}"],
            cwd=REPO, env=env, check=True,
        )
    tiles = [("HR (256 px)", Image.open(hr_path))]
    for name, count in RUNS:
        for i in range(count):
            lr = Image.open(OUT / f"astronaut_hr_{name}_x4_s0_{i}.png")
            tiles.append((f"{name} #{i}" if count > 1 else name, lr.resize((256, 256), Image.NEAREST)))
    panel = Image.new("RGB", (len(tiles) * 260 - 4, 276), "white")
    draw = ImageDraw.Draw(panel)
    for k, (label, tile) in enumerate(tiles):
        panel.paste(tile.convert("RGB"), (k * 260, 20))
        draw.text((k * 260 + 4, 4), label, fill=(0, 0, 0))
    panel.save(OUT / "panel.png")
    for p in OUT.glob(".run"):
        import shutil

        shutil.rmtree(p)
    print(f"wrote {OUT}: {sorted(p.name for p in OUT.iterdir())}")
    print("LR mean abs difference to bicubic:",
          {n: float(np.abs(np.asarray(Image.open(OUT / f"astronaut_hr_{n}_x4_s0_0.png"), dtype=float)
                           - np.asarray(Image.open(OUT / "astronaut_hr_bicubic_x4_s0_0.png"), dtype=float)).mean())
           for n, _ in RUNS[1:]})


if __name__ == "__main__":
    main()
