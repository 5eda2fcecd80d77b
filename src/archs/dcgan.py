"""A small DCGAN-style generator (Radford et al., ICLR 2016): z -> linear -> (upsample x2, 3x3 conv, batch norm,
leaky ReLU) x n -> 3x3 conv -> tanh. Small enough to train on a CPU in minutes; PULSE uses it through the same
generator interface as :class:`src.archs.StyleGAN2Generator`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class DCGANGenerator(nn.Module):
    """z (N, latent_dim) (or (N, 1, latent_dim)) -> images (N, channels, H, W) in [-1, 1],
    H = W = ``base_size`` · 2^``num_upsamples``.

    Generator interface: ``latent_dim``, ``num_latents`` (1), ``channels``, ``resolution``, ``noise_shapes()``
    (none), ``forward(latents, noise=None)``. Put it in ``eval()`` mode for inference (batch norm statistics).
    """

    num_latents = 1

    def __init__(self, latent_dim: int = 64, channels: int = 1, base_size: int = 3, num_upsamples: int = 3,
                 num_feat: int = 32) -> None:
        super().__init__()
        self.latent_dim, self.channels, self.base_size = latent_dim, channels, base_size
        width = [num_feat * 2 ** (num_upsamples - i) for i in range(num_upsamples + 1)]
        self.fc = nn.Linear(latent_dim, width[0] * base_size**2)
        self.fc_norm = nn.BatchNorm2d(width[0])
        blocks = []
        for i in range(num_upsamples):
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width[i], width[i + 1], 3, padding=1),
                       nn.BatchNorm2d(width[i + 1]), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*blocks)
        self.to_image = nn.Conv2d(width[-1], channels, 3, padding=1)
        self.size = base_size * 2**num_upsamples

    @property
    def resolution(self) -> tuple[int, int]:
        return (self.size, self.size)

    def noise_shapes(self) -> list[tuple[int, ...]]:
        return []

    def forward(self, latents: torch.Tensor, noise: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        if latents.ndim == 3:
            latents = latents[:, 0]
        x = self.fc(latents).view(latents.shape[0], -1, self.base_size, self.base_size)
        x = nn.functional.leaky_relu(self.fc_norm(x), 0.2)
        return torch.tanh(self.to_image(self.body(x)))
