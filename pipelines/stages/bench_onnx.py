"""`bench_onnx`: ONNX Runtime accuracy and latency of the exported ticket, against the dense baseline exported
and timed the same way (same target, threads and batch size), and against the PyTorch eager model.

ORT densifies sparse initializers at load and has no kernels that skip unstructured zeros: a latency ratio
near 1 is the honest expectation for an unstructured ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compress.errors import UsageError
from compress.hparams import Hparams
from pipelines.stages import Stage, register
from pipelines.stages.base import StageContext, StageOutput
from pipelines.stages.export_onnx import available


@dataclass(frozen=True)
class BenchOnnxHparams(Hparams):
    batch_size: int = 1
    threads: int = 1
    warmup: int = 20
    iterations: int = 200
    provider: str = "cpu"

    def validate(self) -> None:
        if min(self.batch_size, self.threads, self.iterations) < 1 or self.warmup < 0:
            raise UsageError("batch_size, threads and iterations must be >= 1, warmup >= 0.")


def _available(hp: BenchOnnxHparams) -> tuple[bool, str]:
    ok, reason = available(hp)
    if not ok or hp.provider == "cpu":
        return ok, reason
    from deploy_targets.onnxruntime import OnnxRuntimeTarget

    return OnnxRuntimeTarget(provider=hp.provider).available()


def _p50(rep: dict, batch: int) -> dict:
    return rep["latency"]["batch"][str(batch)]


def run(ctx: StageContext) -> StageOutput:
    from export.onnx import export_onnx
    from pipelines.bench import bench

    hp: BenchOnnxHparams = ctx.hp
    opts = {"batch_sizes": (hp.batch_size,), "threads": hp.threads, "warmup": hp.warmup, "iters": hp.iterations,
            "provider": hp.provider, "dataset": ctx.settings.dataset, "report_dir": ctx.dir}
    mine = bench(ctx.artifact("onnx"), **opts)
    row = _p50(mine, hp.batch_size)
    metrics = {"test_acc": mine["test_acc"], "latency_ms_p50": row["latency_ms_p50"],
               "latency_ms_p90": row["latency_ms_p90"], "throughput_sps": row["throughput_per_s"],
               "size_bytes": mine["size_bytes"]}
    if mine.get("torch"):
        torch_p50 = mine["torch"]["latency"][str(hp.batch_size)]["latency_ms_p50"]
        metrics.update(torch_latency_ms_p50=torch_p50, speedup_vs_torch=torch_p50 / row["latency_ms_p50"],
                       parity_agreement=mine["agreement_vs_torch"])
    if ctx.baseline is not None and "model" in ctx.baseline.artifacts:
        base_dir = ctx.dir / "baseline_onnx"
        if not (base_dir / "model.onnx").is_file():
            export_onnx(ctx.artifact("model", ctx.baseline), base_dir, sparse_storage="dense",
                        dataset=ctx.settings.dataset)
        base = _p50(bench(base_dir / "model.onnx", **{**opts, "report_dir": base_dir}), hp.batch_size)
        metrics["baseline_latency_ms_p50"] = base["latency_ms_p50"]
        metrics["latency_ratio"] = row["latency_ms_p50"] / base["latency_ms_p50"]
    onnx = Path(ctx.artifact("onnx"))
    return StageOutput(metrics=metrics, artifacts={"bench_report": ctx.dir / f"bench-{onnx.name}.json"},
                       notes=[mine["note"]],
                       extra={"target": f"onnxruntime-{hp.provider}", "providers": mine["providers"]})


register(Stage(
    kind="bench_onnx", hparams=BenchOnnxHparams, run=run, available=_available,
    description="ONNX Runtime accuracy and latency, vs the dense baseline on ORT and vs PyTorch eager",
    needs=("onnx",),
    metrics=("test_acc", "latency_ms_p50", "latency_ms_p90", "throughput_sps", "size_bytes", "torch_latency_ms_p50",
             "speedup_vs_torch", "parity_agreement", "baseline_latency_ms_p50", "latency_ratio"),
))
