"""Methods: LightningModules (trainable) and parameter-free baselines."""

from src.methods.adversarial import AdversarialSR
from src.methods.bicubic import BicubicSR
from src.methods.loading import LIGHTNING_NET_PREFIXES, build_eval_model
from src.methods.pulse import PULSESR
from src.methods.supervised import SupervisedSR

__all__ = ["LIGHTNING_NET_PREFIXES", "AdversarialSR", "BicubicSR", "PULSESR", "SupervisedSR", "build_eval_model"]
