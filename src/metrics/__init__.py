"""Image quality metrics."""

from src.metrics.fidelity import psnr, psnr_y, quantize, rgb_to_gray, rgb_to_y, ssim, ssim_y

__all__ = ["psnr", "psnr_y", "quantize", "rgb_to_gray", "rgb_to_y", "ssim", "ssim_y"]
