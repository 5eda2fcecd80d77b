"""Training losses: pixel, perceptual/style (VGG), adversarial (vanilla, LSGAN, hinge, WGAN-GP, RaGAN),
MS-SSIM / Mix (Zhao et al.), total variation. Each is an ``nn.Module`` with a ``loss_weight``."""

from src.losses.adversarial import GANLoss, RelativisticGANLoss, gradient_penalty
from src.losses.perceptual import PerceptualLoss, gram_matrix
from src.losses.pixel import CharbonnierLoss, PixelLoss, TVLoss, build_pixel_loss
from src.losses.ssim_loss import MixLoss, MSSSIMLoss, ms_ssim_map

__all__ = [
    "CharbonnierLoss",
    "GANLoss",
    "MSSSIMLoss",
    "MixLoss",
    "PerceptualLoss",
    "PixelLoss",
    "RelativisticGANLoss",
    "TVLoss",
    "build_pixel_loss",
    "gradient_penalty",
    "gram_matrix",
    "ms_ssim_map",
]
