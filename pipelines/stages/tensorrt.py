"""`tensorrt`: the latest ticket -> ONNX -> TensorRT engines with 2:4 sparse kernels on and off (needs a CUDA
GPU and TensorRT; skipped with the reason elsewhere, or refused under `--require-all`).

Thin over `pipelines.tensorrt_export.export_tensorrt`: it verifies each engine against ONNX Runtime and times
both. `latency_ratio` is the sparse engine over the dense engine of the same ticket on the same GPU: the
measured 2:4 speedup (maintainers report ~15% or less end to end for CNNs; nothing is claimed unmeasured).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compress.errors import UsageError
from compress.hparams import Hparams
from pipelines.stages import Stage, register
from pipelines.stages.base import StageContext, StageOutput

SPARSITY = ("enable", "force", "disable")


@dataclass(frozen=True)
class TensorRTHparams(Hparams):
    sparsity: str = "enable"
    fp16: bool = True
    batch_size: int = 64
    allow_dense_fallback: bool = False

    def validate(self) -> None:
        if self.sparsity not in SPARSITY:
            raise UsageError(f"sparsity must be one of {', '.join(SPARSITY)}, got '{self.sparsity}'.")
        if self.batch_size < 1:
            raise UsageError(f"batch_size must be >= 1, got {self.batch_size}.")


def available(hp: TensorRTHparams) -> tuple[bool, str]:
    from export.tensorrt import available as trt_available

    return trt_available()


def run(ctx: StageContext) -> StageOutput:
    from pipelines.tensorrt_export import export_tensorrt

    hp: TensorRTHparams = ctx.hp
    rep = export_tensorrt(ctx.artifact("ticket"), ctx.dir / "tensorrt", sparsity=hp.sparsity, fp16=hp.fp16,
                          allow_dense_fallback=hp.allow_dense_fallback, batch_sizes=(hp.batch_size,))
    sparse = rep["engines"]["sparse"]
    lat = sparse["latency"]["batch"][str(hp.batch_size)]
    metrics = {"test_acc": sparse["test_acc"], "size_bytes": sparse["size_bytes"],
               "latency_ms_p50": lat["latency_ms_p50"], "latency_ms_p90": lat["latency_ms_p90"],
               "parity_agreement": sparse["parity_vs_ort"]["agreement"],
               "nm_compliant_fraction": len(rep["compliant_layers"]) / max(1, len(rep["nm_report"])),
               "sparse_layers": len(rep.get("sparse_layers") or [])}
    if "dense" in rep["engines"]:
        dense = rep["engines"]["dense"]["latency"]["batch"][str(hp.batch_size)]["latency_ms_p50"]
        metrics.update(baseline_latency_ms_p50=dense, latency_ratio=lat["latency_ms_p50"] / dense)
    return StageOutput(metrics=metrics, artifacts={"plan": Path(sparse["engine"]), "onnx": Path(rep["onnx"])},
                       extra={"target": "tensorrt (sparse vs dense engine)"})


register(Stage(
    kind="tensorrt", hparams=TensorRTHparams, run=run, available=available,
    description="TensorRT engines with 2:4 sparse kernels on and off, verified and timed (CUDA GPU only)",
    needs=("ticket",), produces=("plan", "onnx"),
    metrics=("test_acc", "size_bytes", "latency_ms_p50", "latency_ms_p90", "parity_agreement",
             "nm_compliant_fraction", "sparse_layers", "baseline_latency_ms_p50", "latency_ratio"),
))
