"""Methods: LightningModules (trainable) and parameter-free baselines."""

from src.methods.adversarial import AdversarialSR
from src.methods.bicubic import BicubicSR
from src.methods.pulse import PULSESR
from src.methods.supervised import SupervisedSR

__all__ = ["AdversarialSR", "BicubicSR", "PULSESR", "SupervisedSR"]
