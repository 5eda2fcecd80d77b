"""Image quality metrics."""

from src.metrics.fidelity import psnr, psnr_y, quantize, quantized_gray, quantized_y, ssim, ssim_y

__all__ = ["psnr", "psnr_y", "quantize", "quantized_gray", "quantized_y", "ssim", "ssim_y"]

# No-reference and perceptual metrics (issue 5).
from src.metrics.lpips import build_lpips, lpips  # noqa: E402
from src.metrics.ma_features import ma_features  # noqa: E402
from src.metrics.ma_model import load_ma_model, ma_score  # noqa: E402
from src.metrics.ms_ssim import ms_ssim  # noqa: E402
from src.metrics.niqe import niqe  # noqa: E402
from src.metrics.perceptual_index import perceptual_index, perceptual_index_or_reason, perceptual_scores  # noqa: E402
from src.metrics.rmse import rmse_y  # noqa: E402

__all__ += [
    "build_lpips",
    "load_ma_model",
    "lpips",
    "ma_features",
    "ma_score",
    "ms_ssim",
    "niqe",
    "perceptual_index",
    "perceptual_index_or_reason",
    "perceptual_scores",
    "rmse_y",
]
