"""Degradation pipelines: HR batch -> LR batch, run on the batch's device in fp32 outside autocast."""

from __future__ import annotations

import torch

from src.degradations.resize import imresize


class BicubicDegradation:
    """The bicubic protocol of SR papers: MATLAB ``imresize(HR, 1/scale)`` (antialiased cubic kernel).

    Args:
        scale: integer downscaling factor; HR height and width must be multiples of it.
        antialiasing: MATLAB's default ``True``; ``False`` samples the plain cubic kernel.
        quantize: round the LR batch to 8-bit levels (as the published LR PNG files are), default ``True``.

    Call: ``hr`` float (N, C, H, W) in [0, 1] -> LR float (N, C, H/scale, W/scale) in [0, 1].
    """

    def __init__(self, scale: int, antialiasing: bool = True, quantize: bool = True) -> None:
        if int(scale) != scale or scale < 1:
            raise ValueError(f"degradation.scale must be a positive integer, got {scale!r}")
        self.scale = int(scale)
        self.antialiasing = antialiasing
        self.quantize = quantize

    def __call__(self, hr: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        """``scale`` overrides the configured factor for this batch (multi-scale training)."""
        scale = self.scale if scale is None else int(scale)
        h, w = hr.shape[-2:]
        if h % scale or w % scale:
            raise ValueError(f"HR size {h}x{w} is not a multiple of the scale {scale}: modcrop the image first")
        with torch.autocast(device_type=hr.device.type, enabled=False):
            lr = imresize(hr.float(), 1.0 / scale, antialiasing=self.antialiasing)
        if self.quantize:
            lr = (lr.clamp(0, 1) * 255.0).round() / 255.0
        return lr

    def __repr__(self) -> str:
        return f"BicubicDegradation(scale={self.scale}, antialiasing={self.antialiasing}, quantize={self.quantize})"
