"""Inference helpers for ``python -m src.upscale``: tiling (any image size, bounded memory), the x8 geometric
self-ensemble and iterative back-projection."""

from src.inference.back_projection import back_project, back_project_tiled
from src.inference.ensemble import self_ensemble
from src.inference.tiling import pad_image, size_multiple, tile_starts, tiled_forward

__all__ = [
    "back_project", "back_project_tiled", "pad_image", "self_ensemble", "size_multiple", "tile_starts", "tiled_forward",
]
