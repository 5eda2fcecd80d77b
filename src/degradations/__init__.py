"""Degradation operators (batched tensor ops on NCHW float images in [0, 1]) and pipelines."""

from src.degradations.filtering import filter2d
from src.degradations.jpeg import jpeg
from src.degradations.pipelines import (
    BicubicDegradation,
    ClassicalDegradation,
    RealESRGANDegradation,
    TrainingPairPool,
)
from src.degradations.resize import imresize, modcrop
from src.degradations.sharpen import usm_sharp

__all__ = [
    "BicubicDegradation",
    "ClassicalDegradation",
    "RealESRGANDegradation",
    "TrainingPairPool",
    "filter2d",
    "imresize",
    "jpeg",
    "modcrop",
    "usm_sharp",
]
