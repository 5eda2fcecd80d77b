"""Efficiency of a network: parameters, FLOPs, latency and peak memory of one forward pass."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(net: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)


@torch.inference_mode()
def count_flops(net: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of ``net(x)`` from ``torch.utils.flop_counter`` (a multiply-add counts 2)."""
    with FlopCounterMode(display=False) as counter:
        net(x)
    return int(counter.get_total_flops())


@torch.inference_mode()
def measure_latency(net: nn.Module, x: torch.Tensor, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time (seconds) of ``net(x)`` over ``repeats`` runs after ``warmup`` runs (synchronised
    on CUDA)."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    for _ in range(warmup):
        net(x)
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        net(x)
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.inference_mode()
def peak_memory_bytes(net: nn.Module, x: torch.Tensor) -> int | None:
    """Peak memory allocated by ``net(x)`` above what was allocated before (CUDA allocator statistics).
    ``None`` on the CPU: torch's CPU allocator keeps no peak counter (use the process RSS instead)."""
    if not x.is_cuda:
        return None
    torch.cuda.synchronize(x.device)
    torch.cuda.reset_peak_memory_stats(x.device)
    base = torch.cuda.memory_allocated(x.device)
    net(x)
    torch.cuda.synchronize(x.device)
    return int(torch.cuda.max_memory_allocated(x.device) - base)


@dataclass(frozen=True)
class Efficiency:
    params: int
    gflops: float
    latency_s: float
    peak_memory_mb: float | None  # CUDA only


def measure(net: nn.Module, x: torch.Tensor, repeats: int = 5) -> Efficiency:
    """All four figures for one input."""
    net = net.eval()
    return Efficiency(
        params=count_parameters(net),
        gflops=count_flops(net, x) / 1e9,
        latency_s=measure_latency(net, x, repeats),
        peak_memory_mb=None if (peak := peak_memory_bytes(net, x)) is None else peak / 2**20,
    )


__all__ = ["Efficiency", "count_flops", "count_parameters", "measure", "measure_latency", "peak_memory_bytes"]
