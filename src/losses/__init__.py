"""Training losses."""

from src.losses.pixel import CharbonnierLoss, build_pixel_loss

__all__ = ["CharbonnierLoss", "build_pixel_loss"]
