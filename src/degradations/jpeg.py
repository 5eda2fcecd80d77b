"""Baseline JPEG compression round trip of a batch, per-sample quality, in torch on the batch's device.

``jpeg(img, quality)`` simulates encoding each image with a baseline JPEG encoder at its own quality and
decoding it again, following what libjpeg (and so PIL / OpenCV) does:

1. pad to a multiple of the MCU (16 px with 4:2:0 chroma subsampling, 8 px without) by replicating the last
   row / column;
2. RGB -> YCbCr (JFIF: ``Y = 0.299 R + 0.587 G + 0.114 B``, ``Cb``/``Cr`` centred on 128);
3. chroma subsampling 4:2:0 by 2 x 2 averaging (``chroma_subsampling=False``: 4:4:4);
4. level shift by -128 and an orthonormal 8 x 8 DCT-II per block;
5. quantisation ``round(coef / table)`` with the standard luminance/chrominance tables (ITU-T T.81 Annex K)
   scaled by the IJG quality rule: ``s = 5000 / q`` for ``q < 50`` else ``200 - 2 q``, ``table = floor((base
   * s + 50) / 100)`` clamped to [1, 255] (libjpeg's ``jpeg_set_quality(..., force_baseline=TRUE)``);
6. dequantisation, inverse DCT, +128, chroma upsampling by libjpeg's "fancy" triangle filter (= bilinear 2x
   with edge replication), YCbCr -> RGB, clamp to [0, 255], crop.

The arithmetic is float32 (libjpeg uses integer DCTs and rounds between stages), so results differ from a real
codec by about one 8-bit level; intermediate values are not rounded. Unlike the widely copied DiffJPEG (whose
scale factor ``200 - 2 q`` reaches 0 at q = 100 and divides by zero), the tables are clamped to >= 1, so every
quality in [1, 100] gives finite output; quality 100 is nearly lossless (all tables 1). ``quality`` may be
fractional (Real-ESRGAN draws it uniformly): the table rule above is applied to the real value.
Rounding uses ``torch.round``: not differentiable (gradients through it are zero).

Why not ``kornia.enhance.jpeg_codec_differentiable``: against PIL's encoder/decoder (libjpeg, 4:2:0) on a
256 x 256 crop of astronaut, this code is 41.6 / 44.9 / 44.9 / 45.5 / 46.8 dB PSNR at quality 10 / 30 / 50 /
75 / 95, kornia's 37.5 / 41.6 / 43.2 / 44.2 / 46.7 dB (it quantises with the differentiable surrogate
``round(x) + (x - round(x))^3``), and 16 x 3 x 256 x 256 with per-sample qualities takes 215 ms here vs 1044 ms
(4.9x) on one CPU core: ``experiments/benchmarks/kornia/results.md``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from src.degradations.numerics import cached_constant, to_device

__all__ = ["jpeg", "quality_tables"]

_LUMA = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
_CHROMA_TOP = ((17, 18, 24, 47), (18, 21, 26, 66), (24, 26, 56, 99), (47, 66, 99, 99))

_RGB_TO_YCC = ((0.299, 0.587, 0.114), (-0.168735892, -0.331264108, 0.5), (0.5, -0.418687589, -0.081312411))
_YCC_TO_RGB = ((1.0, 0.0, 1.402), (1.0, -0.344136286, -0.714136286), (1.0, 1.772, 0.0))


def _base_tables() -> tuple[torch.Tensor, torch.Tensor]:
    luma = torch.tensor(_LUMA, dtype=torch.float64)
    chroma = torch.full((8, 8), 99.0, dtype=torch.float64)
    chroma[:4, :4] = torch.tensor(_CHROMA_TOP, dtype=torch.float64)
    return luma, chroma


def quality_tables(quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IJG-scaled (luma, chroma) quantisation tables, each (B, 8, 8) float64, for per-sample ``quality``."""
    q = torch.as_tensor(quality, dtype=torch.float64).reshape(-1).clamp(1, 100)
    scale = torch.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q).view(-1, 1, 1)
    luma, chroma = (t.to(q.device) for t in _base_tables())
    make = lambda base: torch.floor((base * scale + 50.0) / 100.0).clamp(1, 255)  # noqa: E731
    return make(luma), make(chroma)


def _dct_matrix(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Orthonormal 8-point DCT-II matrix D[u, x] = c(u) cos((2x + 1) u pi / 16), c(0) = sqrt(1/8), else 1/2."""
    u = torch.arange(8, dtype=torch.float64).view(8, 1)
    x = torch.arange(8, dtype=torch.float64).view(1, 8)
    d = torch.cos((2 * x + 1) * u * math.pi / 16) * 0.5
    d[0] = d[0] / math.sqrt(2)
    return d.to(device=device, dtype=dtype)


def _blocks(plane: torch.Tensor) -> torch.Tensor:
    """(B, H, W) -> (B, H/8, W/8, 8, 8)."""
    b, h, w = plane.shape
    return plane.reshape(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)


def _unblocks(blocks: torch.Tensor) -> torch.Tensor:
    b, nh, nw = blocks.shape[:3]
    return blocks.permute(0, 1, 3, 2, 4).reshape(b, nh * 8, nw * 8)


def _code_plane(plane: torch.Tensor, table: torch.Tensor, dct: torch.Tensor) -> torch.Tensor:
    """Level-shifted plane (B, H, W) -> quantised/dequantised/inverse-transformed plane."""
    blocks = _blocks(plane - 128.0)
    coef = dct @ blocks @ dct.T
    table = table.view(-1, 1, 1, 8, 8)
    coef = torch.round(coef / table) * table
    return _unblocks(dct.T @ coef @ dct) + 128.0


def jpeg(img: torch.Tensor, quality, chroma_subsampling: bool = True) -> torch.Tensor:
    """JPEG-compress and decode a batch (see the module docstring).

    Args:
        img: (B, 3, H, W) RGB or (B, 1, H, W) gray, float in [0, 1] (clamped first), any device.
        quality: one number or a (B,) tensor/sequence, in [1, 100] (values outside are clamped).
        chroma_subsampling: 4:2:0 (libjpeg's and PIL's default) or 4:4:4.

    Returns:
        (B, C, H, W) float in [0, 1], contiguous, same dtype and device as ``img``.
    """
    if img.ndim == 3:
        return jpeg(img.unsqueeze(0), quality, chroma_subsampling)[0]
    if img.ndim != 4 or img.shape[1] not in (1, 3):
        raise ValueError(f"jpeg expects (B, 3|1, H, W), got shape {tuple(img.shape)}")
    b, c, h, w = img.shape
    dtype = img.dtype if img.dtype in (torch.float32, torch.float64) else torch.float32
    x = img.to(dtype).clamp(0, 1) * 255.0
    q = torch.as_tensor(quality, dtype=torch.float64).reshape(-1)
    if q.numel() == 1:
        q = q.expand(b)
    if q.numel() != b:
        raise ValueError(f"jpeg: {q.numel()} quality values for a batch of {b}")
    luma_t, chroma_t = (to_device(t, img.device, dtype) for t in quality_tables(q.cpu()))
    dct = cached_constant("jpeg_dct", lambda: _dct_matrix(torch.device("cpu"), torch.float64), img.device, dtype)

    sub = chroma_subsampling and c == 3
    mcu = 16 if sub else 8
    ph, pw = (-h) % mcu, (-w) % mcu
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    if c == 1:
        out = _code_plane(x[:, 0], luma_t, dct).unsqueeze(1)
    else:
        to_ycc = cached_constant("jpeg_rgb_to_ycc", lambda: torch.tensor(_RGB_TO_YCC, dtype=torch.float64),
                                 img.device, dtype)
        ycc = torch.einsum("ij,bjhw->bihw", to_ycc, x)
        y_plane = _code_plane(ycc[:, 0], luma_t, dct)
        chroma = ycc[:, 1:] + 128.0
        if sub:
            chroma = F.avg_pool2d(chroma, 2)
        hc, wc = chroma.shape[-2:]
        coded = _code_plane(chroma.reshape(b * 2, hc, wc), chroma_t.repeat_interleave(2, 0), dct)
        coded = coded.reshape(b, 2, hc, wc)
        if sub:
            coded = F.interpolate(coded, scale_factor=2, mode="bilinear", align_corners=False)
        ycc = torch.cat([y_plane.unsqueeze(1), coded - 128.0], dim=1)
        to_rgb = cached_constant("jpeg_ycc_to_rgb", lambda: torch.tensor(_YCC_TO_RGB, dtype=torch.float64),
                                 img.device, dtype)
        out = torch.einsum("ij,bjhw->bihw", to_rgb, ycc)
    out = out[..., :h, :w].clamp(0, 255) / 255.0
    return out.to(img.dtype).contiguous()
