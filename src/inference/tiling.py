"""Tiled inference for images of any size: padding, overlapping tiles and seam-free blending.

``tiled_forward(fn, lr, scale, tile, overlap, ...)`` runs an LR -> SR function ``fn`` on an image of any size
with memory bounded by the tile size:

1. **Pre-padding** (``pre_pad`` LR pixels on every side, reflected) gives networks that behave badly at image
   borders some context there; it is cropped off the output.
2. **Mod-padding** reflects the bottom/right edges up to a multiple of ``mod`` (what the network needs, e.g. 4
   for RRDBNet x1 and 2 for RRDBNet x2, which pixel-unshuffle their input: see :func:`size_multiple`), so that
   any size works; the output is cropped back to ``scale`` x the input size.
3. **Tiles**: ``tile`` x ``tile`` LR windows, neighbours sharing at least ``overlap`` pixels, their starts evenly
   spread over the image and on the ``mod`` grid (so every tile sees the same pixel-unshuffle phase as the whole
   image). ``tile=0`` (or a tile at least as large as the image) runs the image whole.
4. **Blending**: each tile's SR output is weighted by a separable map ``w_y(y) * w_x(x)``. Along a side that
   borders another tile, the weight is 0 over the outer ``overlap // 4`` pixels (context the network needed, but
   where zero padding at the tile edge makes its output differ from a whole-image run), then rises as a raised
   cosine ``(1 - cos)/2`` over the middle ``overlap - 2 * (overlap // 4)`` pixels to 1; sides on the image border
   keep weight 1. The weights are normalised by their sum: because all tiles of a tile-row share ``w_y`` and all
   tiles of a tile-column share ``w_x``, that sum is separable too, ``(sum_i w_y,i)(sum_j w_x,j)``, so it costs two
   1-D vectors instead of a full-size weight image. Where two ramps meet they are exact complements (the
   weights of the two tiles sum to 1), so the output is a smooth cross-fade with no visible seam, and for a
   network whose receptive field reaches at most ``overlap // 4`` LR pixels the tiled result equals the
   whole-image result (up to float rounding).

The output accumulator (``N x C x sH x sW`` float32) lives on ``out_device`` (the CPU by default) and each tile
is moved there as soon as it is computed, so the accelerator only ever holds one tile's activations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "blend_weights",
    "min_input_size",
    "pad_image",
    "pad_to_min_size",
    "size_multiple",
    "tile_starts",
    "tiled_forward",
]

Progress = Callable[[Iterable, int], Iterable]  # (iterable, total) -> iterable, e.g. a tqdm factory


def size_multiple(model: nn.Module) -> int:
    """The multiple of which the LR height and width must be for ``model``: the least common multiple of the
    pixel-unshuffle factors inside it (``nn.PixelUnshuffle`` modules, or an integer ``unshuffle`` attribute as
    :class:`~src.archs.rrdbnet.RRDBNet` x1 / x2 has). 1 for most networks.

    For a model that sees bicubic-upsampled input (``model.input == "bicubic"``, e.g. SRCNN/VDSR), a factor ``r``
    applies to the upsampled image, so the LR needs a multiple of ``r / gcd(r, scale)`` only.
    """
    mod = 1
    for module in model.modules():
        factor = module.downscale_factor if isinstance(module, nn.PixelUnshuffle) else getattr(module, "unshuffle", 1)
        if isinstance(factor, int) and factor > 1:
            mod = math.lcm(mod, factor)
    if getattr(model, "input", "lr") == "bicubic":
        mod //= math.gcd(mod, int(getattr(model, "scale", 1)))
    return mod


def pad_image(x: torch.Tensor, pre_pad: int = 0, mod: int = 1) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``x`` (N, C, H, W): ``pre_pad`` pixels on every side, then the bottom/right up to multiples of ``mod``.

    Reflection padding where the image is large enough for it (``pad < size``), else edge replication.
    Returns ``(padded, (top, left))``: the input occupies ``padded[..., top:top + H, left:left + W]``.
    """
    if pre_pad < 0 or mod < 1:
        raise ValueError(f"pad_image: need pre_pad >= 0 and mod >= 1, got pre_pad={pre_pad}, mod={mod}")
    h, w = x.shape[-2:]
    extra_h = (-(h + 2 * pre_pad)) % mod
    extra_w = (-(w + 2 * pre_pad)) % mod
    pads = (pre_pad, pre_pad + extra_w, pre_pad, pre_pad + extra_h)  # F.pad order: left, right, top, bottom
    if not any(pads):
        return x, (0, 0)
    fits = max(pads[0], pads[1]) < w and max(pads[2], pads[3]) < h
    return F.pad(x, pads, mode="reflect" if fits else "replicate"), (pre_pad, pre_pad)


MAX_CONTEXT = 32  # LR px of context per side that padding of small inputs provides at most


def min_input_size(model: nn.Module) -> int:
    """The smallest LR side a network sees its own receptive field in: ``2 r + 1`` with ``r`` the sum of the
    convolution radii ``(k - 1) / 2 * dilation`` of all its conv layers (an upper bound: layers after the
    upsampler count in LR pixels too), ``r`` capped at :data:`MAX_CONTEXT`. 1 for models without convolutions.

    Smaller inputs are padded up to it (:func:`pad_to_min_size`): with zero padding inside every layer, a 1x1 or
    1x4000 image would otherwise be mostly zeros to the network (a near-black output). A model with an integer
    ``min_input_size`` attribute gives its own value.
    """
    declared = getattr(model, "min_input_size", None)  # a method that needs the image as given (PULSE) says so
    if isinstance(declared, int):
        return declared
    radius = 0
    for module in model.modules() if isinstance(model, nn.Module) else ():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            k, d = max(module.kernel_size), max(module.dilation)
            radius += (k - 1) // 2 * d
    return 2 * min(radius, MAX_CONTEXT) + 1


def pad_to_min_size(x: torch.Tensor, min_size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``x`` (N, C, H, W) evenly on both sides of every dimension shorter than ``min_size``: mirrored
    (reflection, repeated as often as needed), or replicated where a side is a single pixel. Returns
    ``(padded, (top, left))``; the input is ``padded[..., top:top + H, left:left + W]``."""
    h, w = x.shape[-2:]
    top = left = 0
    for dim in (-2, -1):
        while x.shape[dim] < min_size:
            size = x.shape[dim]
            need = min_size - size
            before, after = (need + 1) // 2, need // 2
            if size > 1:
                before, after = min(before, size - 1), min(after, size - 1)
            pads = (before, after, 0, 0) if dim == -1 else (0, 0, before, after)
            x = F.pad(x, pads, mode="reflect" if size > 1 else "replicate")
            if dim == -2:
                top += before
            else:
                left += before
    return x, (top, left)


def tile_starts(length: int, tile: int, overlap: int, mod: int = 1) -> list[int]:
    """Start positions of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap`` shared pixels
    between neighbours; starts evenly spread, multiples of ``mod``, the last tile ending at ``length``.

    ``length``, ``tile`` and ``overlap`` must be multiples of ``mod`` and ``overlap < tile``; a tile at least as
    long as ``length`` gives one tile at 0 (of size ``length``).
    """
    if length % mod or tile % mod or overlap % mod:
        raise ValueError(f"tile_starts: length={length}, tile={tile}, overlap={overlap} must be multiples of {mod}")
    if tile >= length:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"tile overlap must be in [0, tile), got overlap={overlap}, tile={tile}")
    # in units of mod: n tiles with step <= tile - overlap, i.e. n - 1 >= (length - tile) / (tile - overlap)
    n_len, n_tile, n_ov = length // mod, tile // mod, overlap // mod
    count = math.ceil((n_len - n_ov) / (n_tile - n_ov))
    span = n_len - n_tile
    return [(i * span // (count - 1)) * mod for i in range(count)]


def _ramp(n: int) -> torch.Tensor:
    """Raised-cosine ramp of ``n`` samples rising from ~0 to ~1, sampled at pixel centres; ``ramp + ramp.flip``
    is exactly 1, so two facing ramps cross-fade without changing the total weight."""
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return 0.5 - 0.5 * torch.cos(math.pi * t)


def blend_weights(length: int, overlap: int, start_interior: bool, end_interior: bool, scale: int = 1) -> torch.Tensor:
    """1-D blending weights (float64, ``length * scale`` samples) of one tile of ``length`` LR pixels.

    A side that borders another tile (``start_interior`` / ``end_interior``) gets ``overlap // 4`` LR pixels of
    weight 0 at the edge, then a raised-cosine ramp over ``overlap - 2 * (overlap // 4)`` LR pixels; a side on
    the image border keeps weight 1 up to the edge. All sizes are multiplied by ``scale`` (the weights apply to
    the SR output). Needs ``overlap < length`` when a side is interior.
    """
    margin = (overlap // 4) * scale
    ramp_len = (overlap - 2 * (overlap // 4)) * scale
    n = length * scale
    if (start_interior or end_interior) and overlap >= length:
        raise ValueError(f"blend_weights: overlap ({overlap}) must be smaller than the tile ({length})")
    w = torch.ones(n, dtype=torch.float64)
    ramp = _ramp(ramp_len)
    if start_interior:
        w[:margin] = 0
        w[margin : margin + ramp_len] *= ramp
    if end_interior:
        w[n - margin :] = 0
        w[n - margin - ramp_len : n - margin] *= ramp.flip(0)
    return w


def _axis_weights(
    length: int, tile: int, starts: list[int], overlap: int, scale: int
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per-tile weights along one axis, normalised so that they sum to 1 at every output sample."""
    size = min(tile, length)
    weights = [
        blend_weights(size, overlap, i > 0, i < len(starts) - 1, scale) for i in range(len(starts))
    ]
    total = torch.zeros(length * scale, dtype=torch.float64)
    for start, w in zip(starts, weights):
        total[start * scale : (start + size) * scale] += w
    if not bool((total > 0).all()):  # cannot happen with tile_starts' spacing; guards against misuse
        raise RuntimeError("tile blending weights do not cover the image")
    return [w / total[s * scale : (s + size) * scale] for s, w in zip(starts, weights)], total


def tiled_forward(
    fn: Callable[[torch.Tensor], torch.Tensor],
    lr: torch.Tensor,
    scale: int,
    tile: int = 0,
    overlap: int = 32,
    pre_pad: int = 0,
    mod: int = 1,
    progress: Progress | None = None,
    out_device: torch.device | str | None = "cpu",
    min_size: int = 1,
) -> torch.Tensor:
    """Apply ``fn`` (LR (N, C, h, w) -> SR (N, C', h*scale, w*scale)) to ``lr`` (N, C, H, W) tile by tile.

    Args:
        fn: the network (or an ensemble around it); it receives tiles as sliced from ``lr`` (same device and
            dtype) and may return them on any device.
        scale: integer SR factor of ``fn``.
        tile: tile size in LR pixels (rounded down to a multiple of ``mod``); ``0`` runs the whole image at once.
        overlap: LR pixels shared by neighbouring tiles (rounded up to a multiple of ``mod``), see the module
            docstring for how they are blended.
        pre_pad: LR pixels reflected onto every side before inference and cropped off afterwards.
        mod: the network's size multiple (:func:`size_multiple`).
        progress: optional ``(iterable, total) -> iterable`` wrapper for the tile loop (a progress bar).
        out_device: where the output is accumulated (``None``: the device of ``fn``'s output).
        min_size: images with a side below it are padded up to it first (:func:`min_input_size` of the network;
            :func:`pad_to_min_size`), and the output cropped back.

    Returns:
        float32 SR image (N, C', H*scale, W*scale).
    """
    if lr.ndim != 4:
        raise ValueError(f"tiled_forward expects an (N, C, H, W) tensor, got shape {tuple(lr.shape)}")
    if tile < 0 or overlap < 0:
        raise ValueError(f"tile and tile_overlap must be >= 0, got tile={tile}, tile_overlap={overlap}")
    scale = int(scale)
    if min(lr.shape[-2:]) < min_size:
        h, w = lr.shape[-2:]
        padded, (t, left) = pad_to_min_size(lr, min_size)
        out = tiled_forward(fn, padded, scale, tile, overlap, pre_pad, mod, progress, out_device)
        return out[..., t * scale : (t + h) * scale, left * scale : (left + w) * scale].contiguous()
    h, w = lr.shape[-2:]
    x, (top, left) = pad_image(lr, pre_pad, mod)
    ph, pw = x.shape[-2:]
    if tile > 0:
        tile = max(mod, tile // mod * mod)
        overlap = -(-overlap // mod) * mod
        if tile < max(ph, pw) and overlap >= tile:
            raise ValueError(f"tile_overlap ({overlap}) must be smaller than tile ({tile})")
    if tile == 0 or tile >= max(ph, pw):
        tile_h, tile_w, ys, xs = ph, pw, [0], [0]
    else:
        tile_h, tile_w = min(tile, ph), min(tile, pw)
        ys, xs = tile_starts(ph, tile, overlap, mod), tile_starts(pw, tile, overlap, mod)
    wy, _ = _axis_weights(ph, tile_h, ys, overlap, scale)
    wx, _ = _axis_weights(pw, tile_w, xs, overlap, scale)

    positions: Iterator[tuple[int, int]] = ((i, j) for i in range(len(ys)) for j in range(len(xs)))
    total = len(ys) * len(xs)
    out: torch.Tensor | None = None
    for i, j in progress(positions, total) if progress is not None else positions:
        y0, x0 = ys[i], xs[j]
        sr = fn(x[..., y0 : y0 + tile_h, x0 : x0 + tile_w])
        expected = (tile_h * scale, tile_w * scale)
        if tuple(sr.shape[-2:]) != expected:
            raise ValueError(
                f"the network turned a {tile_h}x{tile_w} tile into {tuple(sr.shape[-2:])}, expected {expected} "
                f"(x{scale}): is scale={scale} the network's own scale?"
            )
        device = sr.device if out_device is None else torch.device(out_device)
        if total == 1:  # the whole image: no accumulator, no blending
            out = sr.to(device, torch.float32)
            break
        if out is None:
            out = torch.zeros(sr.shape[0], sr.shape[1], ph * scale, pw * scale, dtype=torch.float32, device=device)
        sr = sr.to(out.device, torch.float32)
        weight = (wy[i][:, None] * wx[j][None, :]).to(out.device, torch.float32)
        out[..., y0 * scale : (y0 + tile_h) * scale, x0 * scale : (x0 + tile_w) * scale].addcmul_(sr, weight)
        del sr, weight
    assert out is not None
    if (top, left) != (0, 0) or (ph, pw) != (h, w):
        out = out[..., top * scale : (top + h) * scale, left * scale : (left + w) * scale].contiguous()
    return out
