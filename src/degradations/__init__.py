"""Degradation operators (batched tensor ops on NCHW float images in [0, 1])."""

from src.degradations.resize import imresize, modcrop

__all__ = ["imresize", "modcrop"]
