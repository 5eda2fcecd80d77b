"""kornia vs the project's own operators in the degradation and augmentation path: same inputs, same run.

For each operator: max |difference| (or PSNR) and the time on one CPU thread, the methods interleaved round by round
(the machine is shared: interleaving puts every method under the same load; the median over rounds is reported).

* filter2d: per-sample 21 x 21 Real-ESRGAN kernels on 16 x 3 x 256 x 256 — ``src.degradations.filter2d``
  (kornia + trimming to the batch's support) vs ``kornia.filters.filter2d``.
* Gaussian blur, 51 taps, sigma 8 (the USM's): ``src.degradations.sharpen.gaussian_blur`` (kornia row pass +
  matmul column pass) vs ``kornia.filters.gaussian_blur2d`` vs ``kornia.filters.filter2d_separable`` with the same
  kernel; error against the float64 dense filter.
* USM (Real-ESRGAN's ``USMSharp``): ``usm_sharp`` vs the same formula on ``kornia.filters.gaussian_blur2d``.
* grey: ``src.degradations.noise.rgb_to_gray`` (kornia, torchvision's weights) vs torchvision's ``rgb_to_grayscale``.
* JPEG: ``src.degradations.jpeg`` vs ``kornia.enhance.jpeg_codec_differentiable``: PSNR to PIL's encode/decode
  (libjpeg, 4:2:0) of a 256 x 256 crop of scikit-image's astronaut at several qualities, and the time for
  16 x 3 x 256 x 256 with per-sample qualities.
* paired augmentation (flips + 90-degree rotation of an LR/HR pair): ``src.data.datasets.augment`` per item on
  uint8 (3 x 64 x 64, 3 x 256 x 256), as the data sets call it, vs ``kornia.augmentation`` (horizontal and vertical
  flip in an ``AugmentationSequential``, the HR's parameters re-applied to the LR; float input, as kornia needs);
  and ``kornia.augmentation.RandomRotation(degrees=90)`` against the exact ``torch.rot90``.
* MATLAB ``imresize`` (x1/4): ``src.degradations.imresize`` vs kornia's closest, ``kornia.geometry.transform.rescale``
  (bicubic, ``antialias=True``): PSNR between the two on the photos.

    cd experiments/benchmarks/kornia && OMP_NUM_THREADS=1 ../../../.venv/bin/python bench_kornia.py > results.md
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import statistics
import sys
import time
from pathlib import Path

import kornia
import kornia.augmentation as KA
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from experiments.benchmarks.machine import cpu_name  # noqa: E402
from src.data.datasets import augment  # noqa: E402
from src.degradations import filter2d, imresize, jpeg, usm_sharp  # noqa: E402
from src.degradations.kernels import random_blur_kernels  # noqa: E402
from src.degradations.noise import rgb_to_gray  # noqa: E402
from src.degradations.sharpen import gaussian_blur, gaussian_kernel1d  # noqa: E402


def interleaved(fns: dict, rounds: int) -> dict[str, float]:
    """Median ms per call of each function, the functions called in turn each round (after one warm-up)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def photos(n: int = 16, size: int = 256) -> torch.Tensor:
    from skimage import data

    names = ["astronaut", "coffee", "chelsea", "rocket"]
    crops = []
    for i in range(n):
        img = getattr(data, names[i % len(names)])()[..., :3]
        h, w = img.shape[:2]
        top, left = (i * 37) % (h - size), (i * 53) % (w - size)
        crops.append(torch.from_numpy(img[top:top + size, left:left + size].copy()).permute(2, 0, 1))
    return torch.stack(crops).float() / 255.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / ((a.double() - b.double()) ** 2).mean().item())


def pil_jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((x * 255).round().byte().permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return torch.from_numpy(np.array(Image.open(buf))).permute(2, 0, 1).float() / 255


def usm_kornia(img: torch.Tensor, weight: float = 0.5, radius: int = 51, threshold: float = 10) -> torch.Tensor:
    """Real-ESRGAN's USM formula with kornia's Gaussian blur (OpenCV's sigma rule for the size)."""
    sigma = 0.3 * ((radius - 1) * 0.5 - 1) + 0.8
    blur = kornia.filters.gaussian_blur2d(img, radius, (sigma, sigma))
    residual = img - blur
    mask = (residual.abs() * 255 > threshold).float()
    soft = kornia.filters.gaussian_blur2d(mask, radius, (sigma, sigma))
    sharp = (img + weight * residual).clamp(0, 1)
    return soft * sharp + (1 - soft) * img


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    r = args.rounds
    x = photos()
    g = torch.Generator().manual_seed(0)
    print(f"# kornia vs own operators: results of `bench_kornia.py --rounds {r}`\n")
    print(f"{datetime.date.today()}, {cpu_name()} ({os.cpu_count()} cores visible, shared), 1 torch thread, "
          f"torch {torch.__version__}, kornia {kornia.__version__}; batch {tuple(x.shape)}. Times: median ms "
          f"over {r} interleaved rounds.\n")

    # ---- filter2d
    kernels = random_blur_kernels(16, generator=g)
    ours, theirs = filter2d(x, kernels), kornia.filters.filter2d(x, kernels, border_type="reflect")
    t = interleaved({"ours": lambda: filter2d(x, kernels),
                     "kornia": lambda: kornia.filters.filter2d(x, kernels, border_type="reflect")}, r)
    print("## Per-sample filter2d (21 x 21 Real-ESRGAN kernels)\n")
    print("| method | ms | max abs diff to kornia |\n|---|---|---|")
    print(f"| `src.degradations.filter2d` (kornia + support trimming) | {t['ours']:.1f} | "
          f"{(ours - theirs).abs().max().item():.1e} |")
    print(f"| `kornia.filters.filter2d` | {t['kornia']:.1f} | 0 |\n")

    # ---- Gaussian blur 51 taps
    sigma = 0.3 * ((51 - 1) * 0.5 - 1) + 0.8
    k1 = gaussian_kernel1d(51).float()
    exact = gaussian_blur(x.double(), 51, separable=False)
    blurs = {
        "ours: kornia row pass + matmul column pass (`gaussian_blur`)": lambda: gaussian_blur(x, 51),
        "`kornia.filters.gaussian_blur2d`": lambda: kornia.filters.gaussian_blur2d(x, 51, (sigma, sigma)),
        "`kornia.filters.filter2d_separable` (OpenCV kernel)":
            lambda: kornia.filters.filter2d_separable(x, k1[None], k1[None]),
        "dense 51 x 51 `filter2d` (the reference's)": lambda: gaussian_blur(x, 51, separable=False),
    }
    errors = {name: (fn() - exact).abs().max().item() for name, fn in blurs.items()}
    t = interleaved(blurs, r)
    print("## Gaussian blur, 51 taps, sigma 8 (the USM's)\n")
    print("| method | ms | max abs diff to the float64 dense filter |\n|---|---|---|")
    for name in blurs:
        print(f"| {name} | {t[name]:.1f} | {errors[name]:.1e} |")
    try:
        kornia.filters.gaussian_blur2d(x[:1, :, :20, :20], 51, (sigma, sigma))
        tiny = "runs"
    except Exception as err:  # noqa: BLE001
        tiny = f"raises {type(err).__name__}"
    print(f"\nA 20 x 20 image: `gaussian_blur` runs (reflects back and forth), `gaussian_blur2d` {tiny}.\n")

    # ---- USM
    diff = (usm_sharp(x) - usm_kornia(x)).abs().max().item()
    t = interleaved({"ours": lambda: usm_sharp(x), "kornia": lambda: usm_kornia(x)}, r)
    print("## USM sharpening (weight 0.5, radius 51, threshold 10)\n")
    print("| method | ms |\n|---|---|")
    print(f"| `usm_sharp` | {t['ours']:.1f} |")
    print(f"| same formula on `kornia.filters.gaussian_blur2d` | {t['kornia']:.1f} |")
    print(f"\nmax abs diff between the two: {diff:.1e}\n")

    # ---- grey
    import torchvision.transforms.functional as TF

    t = interleaved({"ours": lambda: rgb_to_gray(x), "tv": lambda: TF.rgb_to_grayscale(x)}, r)
    print("## Grey conversion (torchvision's weights 0.2989 / 0.587 / 0.114, as Real-ESRGAN)\n")
    print("| method | ms | max abs diff |\n|---|---|---|")
    print(f"| `rgb_to_gray` (`kornia.color.rgb_to_grayscale`) | {t['ours']:.2f} | "
          f"{(rgb_to_gray(x) - TF.rgb_to_grayscale(x)).abs().max().item():.1e} |")
    print(f"| torchvision `rgb_to_grayscale` | {t['tv']:.2f} | 0 |\n")

    # ---- JPEG
    from skimage import data

    photo = torch.from_numpy(data.astronaut()[:256, 128:384].copy()).permute(2, 0, 1).float() / 255
    print("## JPEG (PSNR in dB to PIL's encode/decode of astronaut[:256, 128:384], 4:2:0)\n")
    qualities = [10, 30, 50, 75, 95]
    print("| quality | " + " | ".join(map(str, qualities)) + " |\n|---|" + "---|" * len(qualities))
    rows = {"ours (`src.degradations.jpeg`)": [], "`kornia.enhance.jpeg_codec_differentiable`": []}
    for q in qualities:
        ref = pil_jpeg(photo, q)
        rows["ours (`src.degradations.jpeg`)"].append(psnr(jpeg(photo[None], q)[0], ref))
        kq = kornia.enhance.jpeg_codec_differentiable(photo[None], torch.tensor([float(q)]))[0]
        rows["`kornia.enhance.jpeg_codec_differentiable`"].append(psnr(kq, ref))
    for name, vals in rows.items():
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in vals) + " |")
    quality = torch.rand(16, generator=g) * 65 + 30
    t = interleaved({"ours": lambda: jpeg(x, quality),
                     "kornia": lambda: kornia.enhance.jpeg_codec_differentiable(x, quality)}, r)
    print(f"\nTime, 16 x 3 x 256 x 256, per-sample quality in [30, 95]: ours {t['ours']:.1f} ms, kornia "
          f"{t['kornia']:.1f} ms ({t['kornia'] / t['ours']:.1f}x).\n")

    # ---- paired augmentation
    hr8 = (x[0] * 255).round().byte()
    lr8 = hr8[:, ::4, ::4].contiguous()
    hr, lr = x[:1], x[:1, :, ::4, ::4].contiguous()
    seq = KA.AugmentationSequential(KA.RandomHorizontalFlip(p=0.5), KA.RandomVerticalFlip(p=0.5))
    gen = torch.Generator().manual_seed(1)

    def kornia_pair():
        params = seq.forward_parameters(hr.shape)
        return seq(hr, params=params), seq(lr, params=params)

    # exactness: kornia's pair equals the same flips done by hand
    exact_pairs = 0
    for _ in range(20):
        params = seq.forward_parameters(hr.shape)
        out_hr, out_lr = seq(hr, params=params), seq(lr, params=params)
        flips = [p.data["batch_prob"].bool().item() for p in params]
        ref_hr, ref_lr = hr, lr
        if flips[0]:
            ref_hr, ref_lr = ref_hr.flip(-1), ref_lr.flip(-1)
        if flips[1]:
            ref_hr, ref_lr = ref_hr.flip(-2), ref_lr.flip(-2)
        exact_pairs += int(torch.equal(out_hr, ref_hr) and torch.equal(out_lr, ref_lr))
    rot = KA.RandomRotation(degrees=(90.0, 90.0), p=1.0)
    rotated = rot(hr)
    rot_err = min((rotated - torch.rot90(hr, k, dims=(-2, -1))).abs().max().item() for k in (1, 3))
    t = interleaved({"ours": lambda: augment([lr8, hr8], gen), "kornia": kornia_pair,
                     "rot": lambda: rot(hr)}, max(r, 50))
    print("## Paired LR/HR augmentation, per item (LR 3 x 64 x 64, HR 3 x 256 x 256)\n")
    print("| method | ms per item | exact |\n|---|---|---|")
    print(f"| `augment([lr, hr], generator)`: h-flip, v-flip, transpose (uint8) | {t['ours']:.3f} | yes |")
    print(f"| kornia `AugmentationSequential(RandomHorizontalFlip, RandomVerticalFlip)`, HR params re-applied "
          f"to the LR (float) | {t['kornia']:.3f} | {exact_pairs}/20 pairs equal the hand-made flips |")
    print(f"| kornia `RandomRotation(degrees=90)` on the HR alone (float) | {t['rot']:.3f} | max abs diff "
          f"{rot_err:.1e} to `torch.rot90` |")
    print("\nkornia.augmentation has no transpose / exact 90-degree rotation (its rotation resamples), works on "
          "float batches only, and draws from the global torch RNG (no `torch.Generator`), so it cannot give "
          "the per-item seeded draws the data sets use (`EpochSeeded`).\n")

    # ---- MATLAB imresize
    ours = imresize(x, 0.25)
    theirs = kornia.geometry.transform.rescale(x, 0.25, interpolation="bicubic", antialias=True)
    t = interleaved({"ours": lambda: imresize(x, 0.25), "kornia": lambda: kornia.geometry.transform.rescale(
        x, 0.25, interpolation="bicubic", antialias=True)}, r)
    print("## Bicubic x1/4 (MATLAB `imresize`, the protocol of SR papers)\n")
    print(f"`imresize` {t['ours']:.1f} ms, `kornia.geometry.transform.rescale(bicubic, antialias=True)` "
          f"{t['kornia']:.1f} ms; PSNR between the two {psnr(ours, theirs):.1f} dB (max abs diff "
          f"{(ours - theirs).abs().max().item():.3f}): kornia has no MATLAB-compatible resize (its antialiasing is "
          "a Gaussian pre-blur, not MATLAB's stretched cubic kernel).")


if __name__ == "__main__":
    main()
