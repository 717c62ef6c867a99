"""`export_lce`: the latest binarized ticket -> a verified, bit-packed `model.tflite` for Larq Compute Engine.

Thin over `export.lce.export_lce` (conversion in a torch-free TensorFlow subprocess, then the LCE interpreter
checked against PyTorch on the whole test set and every binary layer checked to be a bit-packed LCE op).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from compress.hparams import Hparams, check_range
from pipelines.stages import Stage, register
from pipelines.stages.base import StageContext, StageOutput

EDGE_MODULES = ("tensorflow", "larq", "larq_compute_engine")


@dataclass(frozen=True)
class ExportLceHparams(Hparams):
    min_agreement: float = 0.99  # the exporter's own parity threshold (refuses to write below it)

    def validate(self) -> None:
        check_range("min_agreement", self.min_agreement, 0.0, 1.0)


def available(hp: Hparams) -> tuple[bool, str]:
    missing = [m for m in EDGE_MODULES if importlib.util.find_spec(m) is None]
    return (False, f"{', '.join(missing)} not installed (install lottery[edge])") if missing else (True, "")


def run(ctx: StageContext) -> StageOutput:
    from export.lce import export_lce

    rep = export_lce(ctx.artifact("binary_ticket"), ctx.dir / "lce", dataset=ctx.settings.dataset,
                     min_agreement=ctx.hp.min_agreement)
    path = Path(rep["artifact"])
    return StageOutput(
        metrics={"test_acc": rep["lce_test_acc"], "size_bytes": rep["size_bytes"], "density": rep["density"],
                 "parity_agreement": rep["agreement"], "max_abs_diff": rep["max_abs_diff"],
                 "bits_per_weight": rep["binary_bits_per_weight"]},
        artifacts={"tflite": path, "export_report": path.parent / "export.json"},
        notes=[rep["note"], *rep.get("warnings", [])],
    )


register(Stage(
    kind="export_lce", hparams=ExportLceHparams, run=run, available=available,
    description="Export the latest binarized ticket to a bit-packed Larq Compute Engine .tflite, verified",
    needs=("binary_ticket",), produces=("tflite",),
    metrics=("test_acc", "size_bytes", "density", "parity_agreement", "max_abs_diff", "bits_per_weight"),
))
