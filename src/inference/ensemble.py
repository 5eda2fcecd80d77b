"""Geometric self-ensemble (x8): run the network on the 8 flips/rotations of the input, undo each transform on
the output and average (Lim et al., EDSR+, CVPRW 2017; Timofte et al., "Seven ways to improve example-based
single image super resolution", CVPR 2016).

The 8 transforms are the dihedral group of the square: ``rot90`` by k = 0..3 quarter turns, each with and without
a horizontal flip. A network that commutes with all of them (e.g. bicubic interpolation) gives the same output
with and without the ensemble.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["TRANSFORMS", "forward_transform", "inverse_transform", "self_ensemble"]

Transform = tuple[int, bool]  # (quarter turns, horizontal flip after the turn)
TRANSFORMS: tuple[Transform, ...] = tuple((k, flip) for flip in (False, True) for k in range(4))


def forward_transform(x: torch.Tensor, transform: Transform) -> torch.Tensor:
    """Rotate the last two dims by ``k`` quarter turns (counter-clockwise), then flip horizontally if asked."""
    k, flip = transform
    y = torch.rot90(x, k, dims=(-2, -1)) if k % 4 else x
    return y.flip(-1) if flip else y


def inverse_transform(y: torch.Tensor, transform: Transform) -> torch.Tensor:
    """Undo :func:`forward_transform` (flip first, then rotate back)."""
    k, flip = transform
    if flip:
        y = y.flip(-1)
    return torch.rot90(y, -k, dims=(-2, -1)) if k % 4 else y


def self_ensemble(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, transforms: Sequence[Transform] = TRANSFORMS
) -> torch.Tensor:
    """Mean of ``inverse(fn(forward(x)))`` over ``transforms`` (default: all 8), accumulated in float32.

    ``x`` is (N, C, H, W); a non-square ``x`` is rotated too, so ``fn`` must accept H and W swapped (a tile whose
    sides are both multiples of the network's size multiple does). Memory: one extra output-sized buffer.
    """
    if not transforms:
        raise ValueError("self_ensemble needs at least one transform")
    acc: torch.Tensor | None = None
    for transform in transforms:
        out = inverse_transform(fn(forward_transform(x, transform)), transform).float()
        acc = out if acc is None else acc.add_(out)
        del out
    return acc.div_(len(transforms))
