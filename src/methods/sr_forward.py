"""How a network is applied to an LR image: input mode (LR or pre-upsampled) and colour mode (RGB or Y)."""

from __future__ import annotations

import torch
from torch import nn

from src.degradations import imresize
from src.imaging.colorspace import rgb_to_ycbcr, ycbcr_to_rgb
from src.losses.precision import no_autocast


class SRForward(nn.Module):
    """Wraps a network so that every method maps RGB LR (N, 3, h, w) in [0, 1] to RGB SR (N, 3, sh, sw).

    Args:
        net: the architecture; parameters are registered under ``net.``.
        scale: SR scale factor.
        input: ``"lr"`` feeds the LR image; ``"bicubic"`` feeds its MATLAB-bicubic upsampling (SRCNN, VDSR).
        color: ``"rgb"`` feeds RGB; ``"y"`` feeds the MATLAB Y channel only and takes Cb/Cr from bicubic.
        channels_last: convert the network and its input to ``channels_last`` memory format.

    Under autocast (``bf16-mixed`` / ``16-mixed``) only the network runs in half precision: the bicubic
    pre-upsampling and the colour conversions run in float32 with autocast off, and the output is float32.
    """

    def __init__(
        self, net: nn.Module, scale: int, input: str = "lr", color: str = "rgb", channels_last: bool = False
    ) -> None:
        super().__init__()
        self.net = net
        self.scale = int(scale)
        self.input = input
        self.color = color
        self.channels_last = channels_last
        if channels_last:
            self.net.to(memory_format=torch.channels_last)

    def _run(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor | list[torch.Tensor]:
        dtype = next((p.dtype for p in self.net.parameters() if p.is_floating_point()), x.dtype)
        x = x.to(dtype)  # float32, or the parameters' dtype under a `-true` precision
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if scale is not None and self.input == "lr" and scale != self.scale:
            out = self.net(x, scale)  # a multi-scale network (``net.scales``): CARN branches, LapSRN levels
        else:
            out = self.net(x)
        if isinstance(out, (list, tuple)):  # pyramid levels (progressive networks in training mode)
            return [o.float() for o in out]
        return out.float()

    def _scale(self, scale: int | None) -> int:
        if scale is None or scale == self.scale:
            return self.scale
        if self.input != "bicubic" and int(scale) not in getattr(self.net, "scales", ()):
            raise ValueError(
                f"this network upsamples x{self.scale} itself; only pre-upsampling models (input=bicubic, e.g. "
                f"SRCNN, VDSR) and multi-scale networks (CARN, MS-LapSRN) can run at another scale (x{scale})"
            )
        return int(scale)

    def _prepare(self, lr: torch.Tensor, scale: int) -> torch.Tensor:
        if lr.ndim != 4:
            raise ValueError(f"expected an LR batch (N, C, h, w), got shape {tuple(lr.shape)}")
        if self.input != "bicubic":
            return lr.float()
        with no_autocast(lr):
            return imresize(lr.float(), float(scale))

    def predict_y(self, lr: torch.Tensor, scale: int | None = None) -> torch.Tensor | list[torch.Tensor]:
        """Y-channel models: LR RGB (N, 3, h, w) -> predicted Y (N, 1, sh, sw) in [0, 1] units (a progressive
        network in training mode returns the list of its pyramid levels, the last at sh x sw)."""
        s = self._scale(scale)
        with no_autocast(lr):
            x = rgb_to_ycbcr(self._prepare(lr, s))[:, :1]
        return self._run(x, s)

    def forward(self, lr: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        """LR (N, 3, h, w) in [0, 1] -> SR (N, 3, h*s, w*s) with s = ``scale`` (pre-upsampling models may be
        run at any scale, e.g. VDSR's single multi-scale model; multi-scale networks at their ``net.scales``) or
        the model's own scale. RGB progressive networks in training mode return their list of levels."""
        s = self._scale(scale)
        if self.color == "rgb":
            return self._run(self._prepare(lr, s), s)
        with no_autocast(lr):
            x = rgb_to_ycbcr(self._prepare(lr, s))
        y = self._run(x[:, :1], s)
        if isinstance(y, (list, tuple)):  # pyramid levels (progressive networks in training mode): the last
            y = y[-1]
        with no_autocast(lr):
            cbcr = x[:, 1:] if self.input == "bicubic" else rgb_to_ycbcr(imresize(lr.float(), float(s)))[:, 1:]
            return ycbcr_to_rgb(torch.cat([y, cbcr], dim=1))
