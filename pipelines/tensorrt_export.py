"""`export_tensorrt`: ticket -> verified ONNX -> 2:4 compliance report -> build_engine.sh -> TensorRT engines.

On a machine without TensorRT or a CUDA GPU everything up to the build is still written (the ONNX, the
per-layer 2:4 report in `tensorrt.json`, `build_engine.sh` with the trtexec line) and then
`BackendUnavailableError` says so (exit code 2). With a GPU: engines with sparsity on and off, parity
against ONNX Runtime on the test set, latency of both, and the layers TensorRT ran with sparse kernels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from compress import data as datasets
from compress.errors import BackendUnavailableError, UsageError
from compress.io import save_json
from export import nm_report
from export import tensorrt as trt_export
from export.errors import ExportError, VerificationError
from export.onnx import export_onnx
from export.verify_onnx import compare

REPORT = "tensorrt.json"


def _force_error(bad: list[dict]) -> ExportError:
    listing = "; ".join(f"{r['layer']} ({r['weight']}): {r.get('reason', 'not 2:4')}" for r in bad)
    return ExportError(f"--sparsity force needs every conv/FC weight 2:4-sparse along its input channels, but "
                       f"{len(bad)} layer(s) are not: {listing}. Prune the ticket with N:M (2:4) selection, pass "
                       "--allow-dense-fallback to let those layers run dense, or use --sparsity enable.")


def export_tensorrt(ticket_dir: str | Path, out_dir: str | Path | None = None, sparsity: str = "enable",
                    fp16: bool = False, int8_calib: int = 0, allow_dense_fallback: bool = False,
                    batch: int | None = None, opset: int = 17, batch_sizes: tuple[int, ...] = (1, 64)
                    ) -> dict[str, Any]:
    """Export the ticket for TensorRT; build and measure engines when TensorRT and a GPU are here."""
    if sparsity not in trt_export.SPARSITY:
        raise UsageError(f"--sparsity must be one of {', '.join(trt_export.SPARSITY)}, got '{sparsity}'.")
    if int8_calib < 0:
        raise UsageError(f"--int8-calib must be >= 0 (0 = no INT8), got {int8_calib}.")
    ticket_dir = Path(ticket_dir).resolve()
    out = Path(out_dir) if out_dir is not None else ticket_dir / "tensorrt"
    onnx_rep = export_onnx(ticket_dir, out, opset=opset, sparse_storage="dense", batch=batch)
    onnx_path = Path(onnx_rep["artifact"])
    rows = nm_report.report(onnx.load(str(onnx_path)))
    bad = nm_report.non_compliant(rows)
    if sparsity == "force" and bad and not allow_dense_fallback:
        raise _force_error(bad)
    profile = trt_export.shapes(tuple(onnx_rep["input_shape"]), batch)
    engine = out / "model.plan"
    cmd = trt_export.trtexec_command(onnx_path.name, engine.name, sparsity, fp16, int8_calib > 0, profile,
                                     "model.calib" if int8_calib else None)
    script = trt_export.write_build_script(out, cmd)
    report: dict[str, Any] = {
        "onnx": str(onnx_path), "build_script": str(script), "trtexec": cmd, "sparsity": sparsity, "fp16": fp16,
        "int8_calib": int8_calib, "nm_report": rows, "compliant_layers": [r["layer"] for r in rows if r["compliant"]],
        "non_compliant_layers": [r["layer"] for r in bad], "built": False,
    }
    ok, reason = trt_export.available()
    if not ok:
        report["reason"] = reason
        save_json(out / REPORT, report)
        raise BackendUnavailableError(
            f"TensorRT cannot build engines here: {reason}. Written so far: {onnx_path}, the 2:4 report {out / REPORT} "
            f"({len(rows) - len(bad)} of {len(rows)} layers 2:4-compliant) and {script} (run it on a GPU machine).")
    report.update(_build_and_measure(onnx_path, out, onnx_rep, sparsity, fp16, int8_calib, profile, batch_sizes))
    report["built"] = True
    save_json(out / REPORT, report)
    return report


def _build_and_measure(onnx_path: Path, out: Path, onnx_rep: dict, sparsity: str, fp16: bool, int8_calib: int,
                       profile: dict, batch_sizes: tuple[int, ...]) -> dict[str, Any]:
    from deploy_targets.onnxruntime import OnnxRuntimeTarget
    from deploy_targets.tensorrt import TensorRTTarget

    data = datasets.get(onnx_rep["dataset"])
    x, y = data.split("test")
    calib = data.x_train[:int8_calib] if int8_calib else None
    builds = {"sparse": trt_export.build_engine(onnx_path, out / "model.plan", sparsity, fp16, calib, profile)}
    if sparsity != "disable":
        builds["dense"] = trt_export.build_engine(onnx_path, out / "model.dense.plan", "disable", fp16, calib, profile)
    ort_logits = OnnxRuntimeTarget().evaluate(onnx_path, x.numpy(), y.numpy())["logits"]
    trt = TensorRTTarget()
    result: dict[str, Any] = {"engines": {}, "sparse_layers": builds["sparse"]["sparse"],
                              "eligible_layers": builds["sparse"]["eligible"]}
    for kind, b in builds.items():
        ev = trt.evaluate(Path(b["engine"]), x.numpy(), y.numpy())
        parity = compare(ort_logits, ev["logits"], "int8" if int8_calib else "fp16" if fp16 else "fp32")
        if not parity["passed"]:
            raise VerificationError(f"the TensorRT engine {b['engine']} disagrees with ONNX Runtime: agreement "
                                    f"{100 * parity['agreement']:.2f}%, max abs diff {parity['max_abs_diff']:.3g}.")
        result["engines"][kind] = {**b, "test_acc": ev["test_acc"], "parity_vs_ort": parity,
                                   "latency": trt.benchmark(Path(b["engine"]), data.input_shape, batch_sizes)}
    return result
