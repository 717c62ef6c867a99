"""`bench_edge`: accuracy and batch-1 latency of the `.tflite` with the LCE interpreter, here or on an ARM
device over SSH (`host = "user@board"`), via `deploy_targets.arm_lce.LceTarget`.

On x86 the interpreter uses LCE's reference kernels (correct, not optimized): the latency says nothing
about ARM and no float baseline runs on this target, so there is no latency ratio; gate on `max_latency_ms`.
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.errors import UsageError
from compress.hparams import Hparams
from pipelines.stages import Stage, register
from pipelines.stages.base import StageContext, StageOutput
from pipelines.stages.export_lce import available as edge_available


@dataclass(frozen=True)
class BenchEdgeHparams(Hparams):
    host: str = ""  # "" = this machine; else an SSH destination with Python + larq-compute-engine
    threads: int = 1
    warmup: int = 10
    iterations: int = 100
    remote_python: str = "python3"

    def validate(self) -> None:
        if min(self.threads, self.iterations) < 1 or self.warmup < 0:
            raise UsageError("threads and iterations must be >= 1, warmup >= 0.")


def available(hp: BenchEdgeHparams) -> tuple[bool, str]:
    return (True, "") if hp.host else edge_available(hp)


def run(ctx: StageContext) -> StageOutput:
    import torch

    from deploy_targets.arm_lce import LceTarget
    from pipelines.stages.measure import agreement

    hp: BenchEdgeHparams = ctx.hp
    target = LceTarget(threads=hp.threads, warmup=hp.warmup, iters=hp.iterations, host=hp.host or None,
                       remote_python=hp.remote_python)
    artifact = ctx.artifact("tflite")
    x, y = ctx.data().split("test")
    ev = target.evaluate(artifact, x.numpy(), y.numpy())
    lat = target.benchmark(artifact, tuple(x.shape[1:]), (1,))
    row = lat["batch"]["1"]
    return StageOutput(
        metrics={"test_acc": ev["test_acc"], "latency_ms_p50": row["latency_ms_p50"],
                 "latency_ms_p90": row["latency_ms_p90"], "throughput_sps": row["throughput_per_s"],
                 "size_bytes": artifact.stat().st_size,
                 "agreement": agreement(ctx, torch.from_numpy(ev["logits"].argmax(1)))},
        notes=[lat["kernels"]],
        extra={"target": f"lce-{hp.host or 'local'}", "kernels": lat["kernels"]},
    )


register(Stage(
    kind="bench_edge", hparams=BenchEdgeHparams, run=run, available=available,
    description="LCE interpreter accuracy and batch-1 latency of the .tflite, here or on an ARM board over SSH",
    needs=("tflite",),
    metrics=("test_acc", "latency_ms_p50", "latency_ms_p90", "throughput_sps", "size_bytes", "agreement"),
))
