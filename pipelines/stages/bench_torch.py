"""`bench_torch`: PyTorch latency of the latest model vs the dense baseline on the same device.

`device = "cuda"` makes this a GPU stage: skipped with the reason on a machine without CUDA. Unstructured
sparsity does not speed up dense PyTorch kernels; the ratio shows that honestly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compress.errors import UsageError
from compress.hparams import Hparams
from compress.ticket import Ticket
from pipelines.stages import Stage, register
from pipelines.stages.base import StageContext, StageOutput
from pipelines.stages.measure import torch_latency

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class BenchTorchHparams(Hparams):
    device: str = "cpu"
    batch_size: int = 1
    warmup: int = 10
    iterations: int = 100
    threads: int = 1

    def validate(self) -> None:
        if self.device not in DEVICES:
            raise UsageError(f"device must be one of {', '.join(DEVICES)}, got '{self.device}'.")
        if min(self.batch_size, self.iterations, self.threads) < 1 or self.warmup < 0:
            raise UsageError("batch_size, iterations and threads must be >= 1 and warmup >= 0.")


def available(hp: BenchTorchHparams) -> tuple[bool, str]:
    if hp.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return False, "no CUDA GPU on this machine (torch.cuda.is_available() is False)"
    return True, ""


def run(ctx: StageContext) -> StageOutput:
    hp: BenchTorchHparams = ctx.hp
    shape = tuple(ctx.data().input_shape)
    opts: dict[str, Any] = {"batch_size": hp.batch_size, "warmup": hp.warmup, "iterations": hp.iterations,
                            "threads": hp.threads, "device": hp.device}
    models = [Ticket.load(ctx.artifact("model")).model("final")]
    if ctx.baseline is not None and "model" in ctx.baseline.artifacts:
        models.append(Ticket.load(ctx.artifact("model", ctx.baseline)).model("final"))
    measured = torch_latency(models, shape, **opts)
    metrics = dict(measured[0])
    if len(measured) == 2:
        metrics["baseline_latency_ms_p50"] = measured[1]["latency_ms_p50"]
        metrics["latency_ratio"] = round(measured[0]["latency_ms_p50"] / measured[1]["latency_ms_p50"], 4)
    return StageOutput(metrics=metrics, extra={"target": f"torch-{hp.device}", "batch_size": hp.batch_size})


register(Stage(
    kind="bench_torch", hparams=BenchTorchHparams, run=run, available=available,
    description="PyTorch latency of the latest model and of the dense baseline (cpu, or cuda when present)",
    needs=("model",),
    metrics=("latency_ms_p50", "latency_ms_p90", "throughput_sps", "baseline_latency_ms_p50", "latency_ratio"),
))
