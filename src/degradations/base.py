"""The one interface of the degradation pipelines: :class:`Degradation`, ``SRBatch -> SRBatch``.

A degradation reads ``batch.hr`` (any dtype :meth:`SRBatch.to_float` accepts), ``batch.training`` and
``batch.scale`` and returns the batch with ``lr`` (and, for Real-ESRGAN, ``hr_usm``) filled in; a pipeline may
also crop or swap the HR images of a training batch (Real-ESRGAN's ``crop_size`` and training-pair pool), so the
caller uses the returned batch, not its own.

The random pipelines own their generators rather than taking one per call: the training stream is per process
(seeded from the seed and the DDP rank), advances from batch to batch and is saved in checkpoints through
``state_dict`` so that a resumed run draws what the uninterrupted one would have; validation draws are re-seeded
from each image's content (see :mod:`src.degradations.pipelines`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from src.data.batch import SRBatch

__all__ = ["Degradation", "SRBatch"]


class Degradation(ABC):
    """HR batch -> the batch with its LR images, on the batch's device, in fp32 outside autocast.

    Attributes:
        scale: the downscaling factor used when ``batch.scale`` is ``None``.
    """

    scale: int

    @abstractmethod
    def __call__(self, batch: SRBatch) -> SRBatch:
        """``batch.hr`` (B, C, H, W) -> the batch with ``lr`` (B, C, H/s, W/s) float32 in [0, 1], ``s`` =
        ``batch.scale`` or ``self.scale``; ``hr`` comes back as float32 in [0, 1]. ``batch.training`` picks the
        training stream (advancing) or the deterministic validation draw. Any ``lr`` in the batch is replaced."""

    def state_dict(self) -> dict:
        """The training stream's state, saved in checkpoints (empty for deterministic degradations)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Continue the training stream saved by :meth:`state_dict` (nothing to do for deterministic ones)."""
        return None
