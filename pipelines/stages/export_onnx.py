"""`export_onnx`: the latest ticket -> a verified `model.onnx` (export.onnx: BN folded, masks baked in,
ONNX Runtime checked against PyTorch on the whole test set before the file is written)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compress.errors import UsageError
from compress.hparams import Hparams
from pipelines.stages import Stage, register
from pipelines.stages.base import StageContext, StageOutput
from pipelines.stages.measure import agreement

STORAGE = ("auto", "dense", "coo")


@dataclass(frozen=True)
class ExportOnnxHparams(Hparams):
    opset: int = 17
    sparse_storage: str = "auto"  # auto: sparse initializers when they make the file smaller
    fp16: bool = False

    def validate(self) -> None:
        if self.sparse_storage not in STORAGE:
            raise UsageError(f"sparse_storage must be one of {', '.join(STORAGE)}, got '{self.sparse_storage}'.")
        if self.opset < 13:
            raise UsageError(f"opset must be >= 13, got {self.opset}.")


def available(hp: ExportOnnxHparams) -> tuple[bool, str]:
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    return (False, f"{', '.join(missing)} not installed (install lottery[onnx])") if missing else (True, "")


def run(ctx: StageContext) -> StageOutput:
    import torch

    from deploy_targets.onnxruntime import OnnxRuntimeTarget
    from export.onnx import export_onnx

    hp: ExportOnnxHparams = ctx.hp
    rep = export_onnx(ctx.artifact("ticket"), ctx.dir / "onnx", opset=hp.opset, sparse_storage=hp.sparse_storage,
                      fp16=hp.fp16, dataset=ctx.settings.dataset)
    path = Path(rep["artifact"])
    x, y = ctx.data().split("test")
    logits = OnnxRuntimeTarget().evaluate(path, x.numpy(), y.numpy())["logits"]
    checks = rep["verification"]
    return StageOutput(
        metrics={"test_acc": rep["test_acc"], "size_bytes": rep["size_bytes"],
                 "size_bytes_dense_storage": rep["size_bytes_dense_storage"], "density": rep["density"],
                 "agreement": agreement(ctx, torch.from_numpy(logits.argmax(1))),
                 "parity_agreement": checks["agreement"], "max_abs_diff": checks["max_abs_diff"]},
        artifacts={"onnx": path, "export_report": path.parent / "export.json"},
        notes=[rep["note"]] if rep.get("sparse_initializers") else [],
    )


register(Stage(
    kind="export_onnx", hparams=ExportOnnxHparams, run=run, available=available,
    description="Export the latest ticket to ONNX, verified against PyTorch with ONNX Runtime",
    needs=("ticket",), produces=("onnx",),
    metrics=("test_acc", "size_bytes", "size_bytes_dense_storage", "density", "agreement", "parity_agreement",
             "max_abs_diff"),
))
