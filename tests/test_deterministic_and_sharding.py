"""``trainer.deterministic=true``: the U-Net discriminator's upsampling and MS-SSIM's reflect padding switch to
formulations whose CUDA backward is deterministic (PyTorch's own kernels raise in that mode), with the same
values; RCAN's ``AdaptiveAvgPool2d(1)`` needs nothing (ATen computes a 1x1 adaptive pool as a ``mean``); and
``strategy=fsdp`` is refused with EMA or GAN methods before anything runs."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from src.archs import RCAN, UNetDiscriminatorSN
from src.losses import MixLoss

aten = torch.ops.aten
# backward kernels listed by torch.use_deterministic_algorithms as raising on CUDA
RAISING = {"adaptive_avg_pool2d_backward", "_adaptive_avg_pool2d_backward", "upsample_bilinear2d_backward",
           "reflection_pad2d_backward"}


class OpNames(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def _run(fn, x: torch.Tensor, deterministic: bool) -> tuple[torch.Tensor, torch.Tensor, set[str]]:
    torch.use_deterministic_algorithms(deterministic)
    try:
        x = x.clone().requires_grad_(True)
        spy = OpNames()
        with spy:
            out = fn(x)
            out.square().sum().backward()
        return out.detach(), x.grad.detach(), spy.names
    finally:
        torch.use_deterministic_algorithms(False)


def _mix_against_a_target():
    target = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    loss = MixLoss()
    return lambda x: loss(x, target)


CASES = {
    "unet_d": (lambda: UNetDiscriminatorSN(3, num_feat=8).eval(), (1, 3, 32, 32)),  # eval: no power iteration
    "mix": (_mix_against_a_target, (1, 3, 32, 32)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_deterministic_formulations_match_and_avoid_raising_kernels(name):
    make, shape = CASES[name]
    torch.manual_seed(0)
    fn = make()
    x = torch.rand(shape, generator=torch.Generator().manual_seed(2))
    out, grad, ops = _run(fn, x, deterministic=False)
    out_d, grad_d, ops_d = _run(fn, x, deterministic=True)
    assert ops & RAISING  # the default path uses PyTorch's (CUDA-nondeterministic) kernels ...
    assert not ops_d & RAISING  # ... the deterministic path none of them
    for a, b in ((out_d, out), (grad_d, grad)):  # equal up to float rounding (relative L2 error)
        assert float((a - b).double().norm() / b.double().norm()) < 1e-6


def test_rcan_channel_attention_uses_no_adaptive_pool_kernel():
    """ATen turns adaptive_avg_pool2d(x, 1) into mean(x, (-2, -1)) before dispatching to a device (all but XPU):
    its backward is an expand, deterministic on CUDA; the issue's RCAN concern does not apply."""
    torch.manual_seed(0)
    net = RCAN(3, 3, num_feat=16, num_group=1, num_block=1, squeeze_factor=4, upscale=2)
    _, _, ops = _run(net, torch.rand(1, 3, 12, 12), deterministic=False)
    assert "mean" in ops and not any("adaptive" in op for op in ops)


def test_upsample2x_matches_interpolate_on_odd_sizes():
    from src.archs.blocks import upsample2x_bilinear

    x = torch.randn(2, 3, 5, 7, generator=torch.Generator().manual_seed(3))
    ref = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.use_deterministic_algorithms(True)
    try:
        torch.testing.assert_close(upsample2x_bilinear(x), ref, rtol=0, atol=1e-6)
    finally:
        torch.use_deterministic_algorithms(False)


# ---- FSDP -------------------------------------------------------------------------------------------------------
def test_fsdp_is_refused_with_gan_and_ema_but_not_plain_supervised():
    from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy
    from omegaconf import OmegaConf

    from src.config.validation import ConfigError
    from src.methods import AdversarialSR, SupervisedSR
    from src.training.run import check_sharding

    fsdp = FSDPStrategy()
    with pytest.raises(ConfigError, match=r"strategy=fsdp cannot train model=rrdb_gan .*ddp_find_unused"):
        check_sharding(fsdp, AdversarialSR, OmegaConf.create({"name": "rrdb_gan", "ema_decay": 0.999}))
    with pytest.raises(ConfigError, match=r"model.ema_decay=0.999 .*model=realesrnet; use strategy=ddp"):
        check_sharding(fsdp, SupervisedSR, OmegaConf.create({"name": "realesrnet", "ema_decay": 0.999}))
    check_sharding(fsdp, SupervisedSR, OmegaConf.create({"name": "edsr", "ema_decay": None}))
    check_sharding(DDPStrategy(), AdversarialSR, OmegaConf.create({"name": "rrdb_gan", "ema_decay": 0.999}))


def test_fsdp_with_a_gan_is_one_error_line_before_training(tmp_path):
    from tests.test_bad_input import one_error_line, run_cli

    proc = run_cli("src.train", "model=rrdb_gan", "strategy=fsdp", "logger=[]", "perceptual_weights=random",
                   f"hydra.run.dir={tmp_path}")
    line = one_error_line(proc)
    assert "strategy=fsdp cannot train model=rrdb_gan" in line
    assert not (tmp_path / "checkpoints").exists()
