"""Pure ``nn.Module`` super-resolution architectures (no Lightning, Hydra or losses in here)."""

from src.archs.espcn import ESPCN
from src.archs.fsrcnn import FSRCNN
from src.archs.srcnn import SRCNN

__all__ = ["ESPCN", "FSRCNN", "SRCNN"]
