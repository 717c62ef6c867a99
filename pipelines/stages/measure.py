"""Measurements shared by stages: storage size of a ticket, top-1 agreement, PyTorch latency."""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.io import load_tensors, save_tensors
from compress.ticket import Ticket
from pipelines.stages.base import PipelineSettings, StageContext

PREDICTIONS = "predictions.safetensors"


def recommended_train(settings: PipelineSettings) -> dict[str, Any]:
    """The model's recommended training settings (the LTH paper's per-network Adam rates) as dotted defaults."""
    from compress.finders import RECOMMENDED_TRAIN

    return {f"train.{k}": v for k, v in RECOMMENDED_TRAIN.get(settings.model, {}).items()}


def ticket_size_bytes(ticket: Ticket) -> int:
    """Bytes to store the ticket's trained weights sparsely: kept prunable weights at their bit width, a 1-bit
    mask per prunable weight when anything is pruned, every other tensor (biases, norms) at 32 bits.

    This is a storage model, not a file size: it is what a sparse format (bitmap + values) would hold.
    """
    state = ticket.final if ticket.final is not None else ticket.init
    bits = 0
    for name, t in state.items():
        if not t.is_floating_point():
            continue
        if name in ticket.mask:
            m = ticket.mask[name]
            width = int(ticket.precision.get(name, ticket.precision.get(name.rsplit(".", 1)[0], 32)))
            bits += int(m.sum()) * width + (m.numel() if not bool(m.all()) else 0)
        else:
            bits += t.numel() * 32
    return math.ceil(bits / 8)


def save_predictions(directory: Path, top1: torch.Tensor) -> Path:
    return save_tensors(directory / PREDICTIONS, {"top1": top1.to(torch.int64)})


def agreement(ctx: StageContext, top1: torch.Tensor) -> float | None:
    """Fraction of test samples whose top-1 class equals the dense baseline's (None without a baseline)."""
    if ctx.baseline is None or "predictions" not in ctx.baseline.artifacts:
        return None
    ref = load_tensors(ctx.artifact("predictions", ctx.baseline))["top1"]
    if ref.shape != top1.shape:
        return None
    return float((ref == top1.to(ref.dtype)).float().mean())


@torch.no_grad()
def torch_latency(models: list[nn.Module], input_shape: tuple[int, ...], batch_size: int = 1, warmup: int = 10,
                  iterations: int = 100, threads: int = 1, device: str = "cpu") -> list[dict[str, float]]:
    """Wall-clock latency of one forward pass of a batch through each model: p50/p90 in ms, samples/s.

    The models run alternately, one call each per iteration, so load from other processes hits them alike
    and their ratio stays meaningful on a busy machine.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    try:
        models = [m.eval().to(device) for m in models]
        x = torch.randn(batch_size, *input_shape, device=device)
        times: list[list[float]] = [[] for _ in models]
        for i in range(warmup + iterations):
            for m, t in zip(models, times, strict=True):
                sync()
                t0 = time.perf_counter()
                m(x)
                sync()
                if i >= warmup:
                    t.append(1000 * (time.perf_counter() - t0))
    finally:
        torch.set_num_threads(previous)
    return [summarize(t, batch_size) for t in times]


def summarize(times_ms: list[float], batch_size: int) -> dict[str, float]:
    """p50/p90 latency (ms) and throughput (samples/s) of a list of per-call times."""
    q = statistics.quantiles(times_ms, n=10) if len(times_ms) > 1 else [times_ms[0]] * 9
    p50 = statistics.median(times_ms)
    return {"latency_ms_p50": round(p50, 4), "latency_ms_p90": round(q[8], 4),
            "throughput_sps": round(1000 * batch_size / p50, 1) if p50 > 0 else float("inf")}
