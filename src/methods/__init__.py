"""Methods: LightningModules (trainable) and parameter-free baselines."""

from src.methods.bicubic import BicubicSR
from src.methods.supervised import SupervisedSR

__all__ = ["BicubicSR", "SupervisedSR"]
