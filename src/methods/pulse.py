"""PULSE: self-supervised upsampling by searching a generator's latent space (Menon et al., "PULSE:
Self-Supervised Photo Upsampling via Latent Space Exploration of Generative Models", CVPR 2020).

Instead of learning LR -> HR, PULSE looks for a generator output G(u) whose downscaled version matches the LR
input (the *downscaling loss* ‖D(G(u)) − LR‖²), with the search variables u kept on the sphere of radius √d, where
almost all the mass of a d-dimensional standard Gaussian lies, so that G(u) stays a likely (natural-looking)
image. Per image and restart:

* u (1, L, d) starts as a normal draw projected onto the sphere; L = the generator's ``num_latents`` (StyleGAN's
  W+: one latent per layer, 18 at 1024 px) with ``per_layer_latents``, else 1 (one latent for every layer);
* generators with a mapping network (StyleGAN) are searched in a Gaussianised W: the paper's trick fits a
  Gaussian to W after undoing the mapping network's last leaky ReLU, v = leaky_relu(w, 5) with w = mapping(z),
  z ~ N(0, I) (``gaussian_fit_samples`` draws; per-dimension mean μ and std σ), and maps u to
  w = leaky_relu(u·σ + μ, 0.2). The search is thereby centred on the mean of W (u = 0 gives
  leaky_relu(μ, 0.2)) with W's spread; generators without a mapping network take u itself;
* noise inputs (StyleGAN): ``zero``, ``fixed`` (one normal draw per restart) or ``trainable`` (the first
  ``trainable_noise_layers`` maps optimised, each projected onto its own sphere of radius √numel, the others
  fixed draws), as in the paper's code;
* loss = ``loss_l2`` · MSE(D(G(u)), LR) + ``loss_l1`` · L1 + ``loss_geocross`` · GEOCROSS, where GEOCROSS is the
  geodesic cross-loss tying the L per-layer latents together: with θ_ij = 2·atan2(‖a_i − a_j‖, ‖a_i + a_j‖) the
  angle between the directions a_i of latents i and j, GEOCROSS = (d / 8) · mean_ij θ_ij² (all L² ordered pairs;
  the d / 8 factor makes the paper's weight 0.05 mean the same at d = 512);
* Adam (``lr``) with a per-step schedule, projection of every search variable back onto its sphere after every
  step; stop as soon as the downscaling MSE is ≤ ``eps`` (the paper's criterion, pixels in [0, 1]) or after
  ``steps``; ``restarts`` searches from new random starts (stopping at the first that reaches ``eps`` when
  ``stop_at_eps``); the result is the image with the lowest downscaling MSE seen.

Images: generators return (N, C, H, W) in [-1, 1]; PULSE works in [0, 1] (x + 1) / 2. D is our MATLAB bicubic
``imresize`` (``downscale=bicubic``; ``area`` and ``bilinear`` (antialiased) are the alternatives).

Generator interface (:class:`src.archs.StyleGAN2Generator`, :class:`src.archs.DCGANGenerator`, or any module
with): ``latent_dim``, ``num_latents``, ``channels``, ``resolution`` (H, W), ``noise_shapes()`` (list of
per-map shapes, [] if none), ``forward(latents (N, num_latents, latent_dim), noise list | None)``, optionally
``mapping(z)``. Generator files: rosinality's StyleGAN2 checkpoints (``{g_ema, …}``, with ``generator.arch``), or
the suite's own ``{arch, state_dict}`` files (:func:`save_generator`), which carry their architecture.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from src.config.schema import GeneratorConfig, keys_of
from src.config.validation import ConfigError, check_keys
from src.degradations import imresize
from src.storage.atomic import write_bytes
from src.weights.checkpoints import compare_state_dicts

SCHEDULES = ("fixed", "linear1cycle", "linear1cycledrop")
NOISE = ("zero", "fixed", "trainable")
DOWNSCALE = ("bicubic", "area", "bilinear")
INTERFACE = ("latent_dim", "num_latents", "channels", "resolution", "noise_shapes")


@dataclass
class PulseSettings:
    """The search knobs (``conf/search/pulse.yaml``); defaults are the paper code's."""

    steps: int = 100
    eps: float = 2e-3
    lr: float = 0.4
    lr_schedule: str = "linear1cycledrop"
    restarts: int = 3
    stop_at_eps: bool = True
    loss_l2: float = 100.0
    loss_l1: float = 0.0
    loss_geocross: float = 0.05
    per_layer_latents: bool = True
    noise: str = "trainable"
    trainable_noise_layers: int = 5
    downscale: str = "bicubic"
    gaussian_fit_samples: int = 10000
    seed: int = 0

    @classmethod
    def from_config(cls, node: Mapping | None, path: str = "search") -> PulseSettings:
        """Checked settings from a config node: unknown keys name the closest valid one; types and ranges are
        checked (a :class:`ConfigError` names the key, the value and what was expected)."""
        node = dict(node or {})
        names = [f.name for f in dataclasses.fields(cls)]
        check_keys(node, path, names, "the PULSE search settings")
        settings = cls(**node)
        settings.check(path)
        return settings

    def check(self, path: str = "search") -> None:
        def bad(key: str, expected: str) -> ConfigError:
            return ConfigError(f"{path}.{key}={getattr(self, key)!r}: expected {expected}")

        for key, minimum in (("steps", 1), ("restarts", 1), ("trainable_noise_layers", 0),
                             ("gaussian_fit_samples", 2), ("seed", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise bad(key, f"an integer >= {minimum}")
        for key in ("eps", "lr", "loss_l2", "loss_l1", "loss_geocross"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise bad(key, "a number >= 0")
        if self.lr <= 0:
            raise bad("lr", "a number > 0")
        if self.loss_l2 == 0 and self.loss_l1 == 0:
            raise ConfigError(f"{path}.loss_l2 and {path}.loss_l1 are both 0: nothing ties the image to the input")
        for key in ("stop_at_eps", "per_layer_latents"):
            if not isinstance(getattr(self, key), bool):
                raise bad(key, "true or false")
        for key, choices in (("lr_schedule", SCHEDULES), ("noise", NOISE), ("downscale", DOWNSCALE)):
            if getattr(self, key) not in choices:
                raise bad(key, "one of " + ", ".join(choices))


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """Learning-rate multiplier at ``step`` (0-based) of ``steps``: ``fixed`` 1; ``linear1cycle`` 0.1 -> 1 -> 0.1
    (linear, peak at half way); ``linear1cycledrop`` the same cycle over the first 90 % of the steps, then 0.1 ->
    0.001 linearly over the last 10 %."""
    if schedule == "fixed":
        return 1.0
    span = steps if schedule == "linear1cycle" else 0.9 * steps
    if step < span:
        return 0.1 + 0.9 * (1.0 - abs(2.0 * step / span - 1.0))
    return 0.1 + (step - span) / (steps - span) * (0.001 - 0.1)


def project_to_sphere(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """``x`` rescaled (in float64) so that every slice over ``dims`` has norm √(its number of elements)."""
    n = math.prod(x.shape[d] for d in dims)
    x64 = x.double()
    return (x64 * (math.sqrt(n) / x64.square().sum(dim=dims, keepdim=True).sqrt().clamp_min(1e-12))).to(x.dtype)


def geocross(u: torch.Tensor) -> torch.Tensor:
    """Geodesic cross-loss of per-layer latents ``u`` (N, L, d): (d / 8) · mean_ij θ_ij², summed over N (0 for
    L = 1); θ_ij the angle between the directions of latents i and j."""
    n, layers, d = u.shape
    if layers < 2:
        return u.new_zeros(())
    a = u / u.norm(dim=-1, keepdim=True)
    diff = (a.unsqueeze(1) - a.unsqueeze(2)).square().sum(-1).add(1e-9).sqrt()
    summ = (a.unsqueeze(1) + a.unsqueeze(2)).square().sum(-1).add(1e-9).sqrt()
    theta = 2 * torch.atan2(diff, summ)
    return (theta.square().mean(dim=(1, 2)) * d / 8).sum()


def downscale(x: torch.Tensor, scale: int, method: str = "bicubic") -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H / scale, W / scale), differentiable."""
    if method == "bicubic":
        return imresize(x, 1.0 / scale)
    if method == "area":
        return F.avg_pool2d(x, scale)
    return F.interpolate(x, scale_factor=1.0 / scale, mode="bilinear", align_corners=False, antialias=True)


def psnr_01(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of two images in [0, 1] (all channels, no border shaved); inf when equal."""
    mse = float((a.double() - b.double()).square().mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def check_generator(generator: nn.Module) -> None:
    """Raise ``ValueError`` when ``generator`` lacks the interface PULSE needs (see the module docstring)."""
    missing = [name for name in INTERFACE if not hasattr(generator, name)]
    if missing:
        raise ValueError(f"{type(generator).__name__} is not a PULSE generator: missing {', '.join(missing)} "
                         f"(needs {', '.join(INTERFACE)} and forward(latents, noise))")


class LatentSpace:
    """u (N, L, d) on spheres -> the generator's latents (N, num_latents, d): the Gaussian fit of W for generators
    with a ``mapping`` network (see the module docstring), else the identity; L = 1 is repeated for every layer."""

    def __init__(self, generator: nn.Module, samples: int = 10000, seed: int = 0, chunk: int = 2000) -> None:
        self.num_latents = int(generator.num_latents)
        self.mean = self.std = None
        if hasattr(generator, "mapping"):
            device = next(generator.parameters()).device
            gen = torch.Generator().manual_seed(seed)
            total = sum_sq = None
            with torch.no_grad():
                for start in range(0, samples, chunk):
                    z = torch.randn(min(chunk, samples - start), generator.latent_dim, generator=gen)
                    v = F.leaky_relu(generator.mapping(z.to(device)), 5.0).double()
                    total = v.sum(0) if total is None else total + v.sum(0)
                    sum_sq = v.square().sum(0) if sum_sq is None else sum_sq + v.square().sum(0)
            mean = total / samples
            self.mean = mean.float()
            self.std = ((sum_sq - samples * mean.square()) / (samples - 1)).clamp_min(0).sqrt().float()

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        if self.mean is not None:
            u = F.leaky_relu(u * self.std.to(u.device) + self.mean.to(u.device), 0.2)
        return u.expand(-1, self.num_latents, -1) if u.shape[1] == 1 else u


@dataclass
class PulseResult:
    """One image's search. ``image`` (C, H, W) and ``downscaled`` (C, h, w): in [0, 1], quantised to 8 bits (what is
    written); ``psnr`` (dB) of ``downscaled`` against the input; ``mse`` the downscaling MSE of the float image;
    ``steps`` the steps of the restart that gave the image, ``total_steps`` over all restarts; ``restart`` (0-based);
    ``log`` one row per step (restart, step, lr, loss, mse, geocross)."""

    image: torch.Tensor
    downscaled: torch.Tensor
    psnr: float
    mse: float
    reached_eps: bool
    steps: int
    total_steps: int
    restart: int
    seconds: float
    log: list[dict] = field(default_factory=list)


class Pulse:
    """The search of the module docstring for one generator. ``search(lr, scale)`` runs it on one LR image."""

    def __init__(self, generator: nn.Module, settings: PulseSettings | None = None) -> None:
        check_generator(generator)
        self.generator = generator.eval().requires_grad_(False)
        self.settings = settings or PulseSettings()
        self._space: LatentSpace | None = None

    @property
    def space(self) -> LatentSpace:
        if self._space is None:
            s = self.settings
            self._space = LatentSpace(self.generator, s.gaussian_fit_samples, s.seed)
        return self._space

    def check_input(self, lr: torch.Tensor, scale: int | None) -> int:
        """The scale for ``lr`` (C, h, w): ``scale``, or resolution / LR size when ``None``; ``ValueError`` when the
        generator's images cannot be downscaled to the LR's size or channels."""
        g = self.generator
        height, width = (int(v) for v in g.resolution)
        if lr.ndim != 3 or lr.shape[0] != g.channels:
            raise ValueError(f"LR image shape {tuple(lr.shape)}: expected ({g.channels}, h, w) for this generator")
        h, w = lr.shape[-2:]
        if scale is None:
            if height % h or width % w or height // h != width // w:
                raise ValueError(f"a {w}x{h} LR image is no integer downscaling of the generator's {width}x{height}")
            scale = height // h
        if (h * scale, w * scale) != (height, width):
            raise ValueError(f"a {w}x{h} LR image at x{scale} is {w * scale}x{h * scale}, but the generator makes "
                             f"{width}x{height} images: expected a {width // scale}x{height // scale} LR image")
        return int(scale)

    def _noise(self, gen: torch.Generator, device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        s = self.settings
        maps, trainable = [], []
        for i, shape in enumerate(self.generator.noise_shapes()):
            if s.noise == "zero":
                maps.append(torch.zeros(shape, device=device))
                continue
            noise = torch.randn(shape, generator=gen).to(device)
            if s.noise == "trainable" and i < s.trainable_noise_layers:
                noise = project_to_sphere(noise, tuple(range(1, noise.ndim))).requires_grad_(True)
                trainable.append(noise)
            maps.append(noise)
        return maps, trainable

    def search(self, lr: torch.Tensor, scale: int | None = None,
               callback: Callable[[int, int, torch.Tensor, list[torch.Tensor]], None] | None = None) -> PulseResult:
        """Search for an HR image whose downscaled version matches ``lr`` (C, h, w) in [0, 1].

        ``callback(restart, step, u, trainable_noise)`` is called after every optimiser step and projection.
        """
        s, g = self.settings, self.generator.eval()
        scale = self.check_input(lr, scale)
        device = next(g.parameters()).device
        target = lr.unsqueeze(0).to(device, torch.float32)
        space = self.space
        layers = int(g.num_latents) if s.per_layer_latents else 1
        start = time.perf_counter()
        best: tuple[float, torch.Tensor, int, int] | None = None
        log: list[dict] = []
        total = 0
        with torch.enable_grad():
            for restart in range(s.restarts):
                gen = torch.Generator().manual_seed(s.seed * 1000 + restart)
                u = torch.randn(1, layers, int(g.latent_dim), generator=gen).to(device)
                u = project_to_sphere(u, (2,)).requires_grad_(True)
                noise, trainable = self._noise(gen, device)
                params = [u, *trainable]
                opt = torch.optim.Adam(params, lr=s.lr)
                reached, steps = False, 0
                for step in range(s.steps + 1):
                    x = (g(space(u), noise) + 1) / 2
                    down = downscale(x, scale, s.downscale)
                    mse = (down - target).square().mean()
                    value = float(mse.detach())
                    if best is None or value < best[0]:
                        best = (value, x.detach()[0].clone(), restart, step)
                    if value <= s.eps:
                        reached = True
                    if reached or step == s.steps:
                        break
                    geo = geocross(u) if layers > 1 and s.loss_geocross > 0 else x.new_zeros(())
                    loss = s.loss_l2 * mse + s.loss_geocross * geo
                    if s.loss_l1:
                        loss = loss + s.loss_l1 * (down - target).abs().mean()
                    lr_now = s.lr * lr_factor(s.lr_schedule, step, s.steps)
                    for group in opt.param_groups:
                        group["lr"] = lr_now
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    with torch.no_grad():
                        u.copy_(project_to_sphere(u, (2,)))
                        for n in trainable:
                            n.copy_(project_to_sphere(n, tuple(range(1, n.ndim))))
                    steps = step + 1
                    log.append({"restart": restart, "step": steps, "lr": lr_now, "loss": float(loss.detach()),
                                "mse": value, "geocross": float(geo.detach())})
                    if callback is not None:
                        callback(restart, steps, u.detach(), [n.detach() for n in trainable])
                total += steps
                if reached and s.stop_at_eps:
                    break
        mse_best, image, restart, steps = best
        image = image.clamp(0, 1).mul(255).round().div(255)
        down = downscale(image.unsqueeze(0), scale, s.downscale)[0].clamp(0, 1).mul(255).round().div(255)
        return PulseResult(image.cpu(), down.cpu(), psnr_01(down.cpu(), lr.cpu()), mse_best, mse_best <= s.eps,
                           steps, total, restart, time.perf_counter() - start, log)


# ---- generator files -----------------------------------------------------------------------------------------
def _read_weights(path: Path) -> dict:
    try:
        # rosinality's training checkpoints also store their argparse arguments: a plain namespace, allowed
        with torch.serialization.safe_globals([argparse.Namespace]):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported with its name
        raise ValueError(f"generator.weights={path}: cannot read it as a torch weights file ({exc})") from None
    if not isinstance(state, dict):
        raise ValueError(f"generator.weights={path}: expected a dict of tensors, got {type(state).__name__}")
    return state


def load_generator(arch: Mapping | None, weights: str | Path | None) -> nn.Module:
    """The generator of a ``generator`` config node: ``arch`` ({_target_, …} or None) and a ``weights`` file or
    model name of ``python -m src.download list`` (``stylegan2_ffhq_config_f``: downloaded on first use).

    A suite generator file ({arch, state_dict}, :func:`save_generator`) brings its own architecture (then
    ``arch`` must be null or the same); other files (rosinality's ``{g_ema, …}`` checkpoints, bare state dicts)
    are loaded into ``arch``. Loading is strict; the generator is returned in eval mode on the CPU.
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from src.archs.stylegan2 import rosinality_state_dict
    from src.zoo import resolve_weights

    if not weights:
        raise ConfigError("generator.weights=… is required: a StyleGAN2 checkpoint in rosinality's layout "
                          "(with generator=stylegan2_ffhq or another arch) or a generator file written by this suite")
    try:  # a file, or a model name of `python -m src.download list` (downloaded on first use)
        path = resolve_weights(str(weights))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"generator.weights={weights}: {exc}") from None
    if not path.is_file():
        raise FileNotFoundError(f"generator.weights={weights}: not a file")
    state = _read_weights(path)
    if OmegaConf.is_config(arch):
        arch = OmegaConf.to_container(arch, resolve=True)
    if "arch" in state and "state_dict" in state:
        if arch and dict(arch) != dict(state["arch"]):
            raise ConfigError(f"generator.weights={weights} carries its own architecture {state['arch']}; "
                              f"generator.arch={arch} differs: set generator.arch=null")
        arch, sd = dict(state["arch"]), state["state_dict"]
    else:
        if not arch:
            raise ConfigError(f"generator.weights={weights} has no architecture inside: give generator.arch "
                              "(e.g. generator=stylegan2_ffhq)")
        sd = rosinality_state_dict(state) if any(k in state for k in ("g_ema", "g", "input.input")) else state
    net = instantiate(arch)
    diff = compare_state_dicts(sd, net.state_dict())
    missing, unexpected, mismatched = diff.missing, diff.unexpected, [k for k, _, _ in diff.shapes]
    if diff:
        def few(keys):
            return ", ".join(keys[:5]) + (" …" if len(keys) > 5 else "") if keys else "none"

        settings = {k: v for k, v in arch.items() if k != "_target_"}
        raise ValueError(f"generator.weights={weights} does not fit {arch.get('_target_')} ({settings}): "
                         f"missing {few(missing)}; unexpected {few(unexpected)}; shape mismatch {few(mismatched)}")
    net.load_state_dict(sd, strict=True)
    check_generator(net)
    return net.eval()


def save_generator(path: str | Path, arch: Mapping, generator: nn.Module) -> Path:
    """Write a suite generator file {arch, state_dict} that :func:`load_generator` reads without an arch config."""
    buffer = io.BytesIO()  # serialised first: torch.save reports a failed write as an opaque RuntimeError
    torch.save({"arch": dict(arch), "state_dict": generator.state_dict()}, buffer)
    return write_bytes(path, buffer.getbuffer())


# ---- PULSE as an SR method (for evaluate) --------------------------------------------------------------------
def _to_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, channels, H, W): gray -> repeated, RGB -> BT.601 luma (for gray generators)."""
    if x.shape[1] == channels:
        return x
    if channels == 3 and x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1)
    if channels == 1 and x.shape[1] == 3:
        from src.imaging.colorspace import rgb_to_luma_bt601

        return rgb_to_luma_bt601(x)
    raise ValueError(f"cannot convert {x.shape[1]}-channel images to {channels} channels")


class PULSESR(nn.Module):
    """PULSE as an LR -> SR method: (N, C, h, w) in [0, 1] -> (N, C, H, W), one search per image; the LR size
    times ``scale`` must be the generator's resolution. ``generator`` = {arch, weights} (see
    :func:`load_generator`), ``search`` = :class:`PulseSettings` keys. Nothing is trained (``trainable = False``);
    the generator's weights come from ``generator.weights``."""

    trainable = False
    min_input_size = 1  # the LR is matched as given: never padded (src.inference.tiling.min_input_size)

    def __init__(self, name: str = "pulse", scale: int = 4, generator: Mapping | None = None,
                 search: Mapping | None = None) -> None:
        super().__init__()
        from omegaconf import OmegaConf

        self.name, self.scale = name, int(scale)
        generator = OmegaConf.to_container(generator, resolve=True) if OmegaConf.is_config(generator) else generator
        search = OmegaConf.to_container(search, resolve=True) if OmegaConf.is_config(search) else search
        generator = dict(generator or {})
        check_keys(generator, "model.generator", keys_of(GeneratorConfig), "the PULSE generator")
        self.generator = load_generator(generator.get("arch"), generator.get("weights"))
        self.pulse = Pulse(self.generator, PulseSettings.from_config(search, "model.search"))
        self.last_results: list[PulseResult] = []

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        channels = int(self.generator.channels)
        outputs, self.last_results = [], []
        for image in _to_channels(lr.float(), channels):
            result = self.pulse.search(image, self.scale)
            self.last_results.append(result)
            outputs.append(result.image)
        sr = torch.stack(outputs).to(lr.device)
        return _to_channels(sr, lr.shape[1])
