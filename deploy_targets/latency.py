"""A generic latency harness shared by every deploy target (and the PyTorch eager reference).

Warm-up calls first (allocators, lazy init, caches), then timed calls with `time.perf_counter_ns`;
reports p50/p90 per batch size and throughput. Thread counts are fixed by the caller (ORT session
options, `torch.set_num_threads`) so runtimes are compared on equal terms.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

Runner = Callable[[], Any]


def measure(run: Runner, warmup: int = 10, iters: int = 100, sync: Callable[[], None] | None = None) -> dict:
    """Time `run()` `iters` times after `warmup` calls; `sync` (e.g. CUDA synchronize) ends each call."""
    for _ in range(max(0, warmup)):
        run()
    if sync:
        sync()
    times = np.empty(max(1, iters))
    for i in range(len(times)):
        t0 = time.perf_counter_ns()
        run()
        if sync:
            sync()
        times[i] = (time.perf_counter_ns() - t0) / 1e6
    return {"latency_ms_p50": float(np.percentile(times, 50)), "latency_ms_p90": float(np.percentile(times, 90)),
            "latency_ms_mean": float(times.mean()), "iters": len(times), "warmup": warmup}


def sweep(make_runner: Callable[[int], Runner], batch_sizes: tuple[int, ...], warmup: int = 10, iters: int = 100,
          sync: Callable[[], None] | None = None) -> dict[str, dict]:
    """`measure` at each batch size; adds throughput in samples/s (batch / p50)."""
    out = {}
    for b in batch_sizes:
        r = measure(make_runner(b), warmup, iters, sync)
        r["throughput_sps"] = b / (r["latency_ms_p50"] / 1e3) if r["latency_ms_p50"] > 0 else float("inf")
        out[str(b)] = r
    return out


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run PyTorch with exactly `n` intra-op threads, restoring the previous setting after."""
    import torch

    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
