"""`export_tensorrt` (`lottery export tensorrt INPUT`): an exported ONNX -> TensorRT engines with 2:4 sparse
kernels allowed (`BuilderFlag.SPARSE_WEIGHTS`) and not, measured against each other and against ONNX Runtime.

Pipeline: the `onnx` of an earlier `export_onnx` stage (never a new export from PyTorch) -> sparse initializers
densified at the ONNX level (TensorRT needs constant dense Conv/Gemm weights) -> `model.onnx` in the stage folder
-> per-layer 2:4 compliance of its weights as TensorRT sees them (export.nm_report) -> `build_engine.sh` with the
equivalent trtexec lines. Without TensorRT or a CUDA GPU the stage stops there, skipped with the reason (the
command exits 2). With one: an engine with sparse kernels allowed and a dense twin, both checked against ONNX
Runtime on the whole test set (`parity_*`), both timed with the shared harness (deploy_targets.latency),
`latency_ratio` = sparse / dense engine p50, and the layers TensorRT ran with sparse kernels, read from its
engine inspector (export.trt_layers).

What to expect: TensorRT times sparse and dense tactics per layer and keeps the faster one, so a 2:4 layer
may still run dense; NVIDIA reports sparse convs win when input and output channels are large (> 256,
NVIDIA/TensorRT#3849) and ~15% or less end to end for CNNs. Sparse kernels need FP16 or INT8 precision
(TensorRT developer guide, "Structured Sparsity").
INT8 is not offered: TensorRT's INT8 calibrator API is deprecated since TensorRT 10.1 (quantize explicitly
with Q/DQ nodes instead). TensorRT may not pick 2:4 sparse tactics when Q/DQ (explicit quantization) nodes are
present: users report `HasSparseWeights=1` layers of a Q/DQ model without sparse kernels where the same model
without Q/DQ got them (NVIDIA/TensorRT#4694, TensorRT 8.6), although NVIDIA's "Sparsity in INT8" blog
post deploys sparse QAT models. The exporter notes Q/DQ nodes; the inspector says what really ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compress.errors import UsageError
from compress.hparams import Hparams, setting
from compress.method import Context, Method, Output

SPARSITY = ("enable", "disable")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
REPORTS = {"sparse": "layers.json", "dense": "layers.dense.json"}


@dataclass(frozen=True)
class ExportTensorRTHparams(Hparams):
    sparsity: str = setting("enable", choices=SPARSITY, help="enable: BuilderFlag.SPARSE_WEIGHTS (TensorRT runs a "
                            "2:4 sparse kernel where it is faster) plus a dense twin for latency_ratio; disable: one "
                            "dense engine.")
    fp16: bool = setting(True, help="FP16 precision (sparse kernels need FP16 or INT8); off: the ONNX's precision.")
    batch_size: int = setting(64, lo=1, help="Batch size latency is measured at (the profile's opt shape).")
    max_batch: int = setting(256, lo=1, help="Largest batch of the optimization profile (dynamic-batch ONNX).")
    workspace_mib: int = setting(1024, lo=1, digest=False, help="TensorRT builder workspace in MiB.")
    warmup: int = setting(20, lo=0, digest=False, help="Untimed runs before each latency measurement.")
    iters: int = setting(200, lo=1, digest=False, help="Timed runs per engine.")

    def validate(self) -> None:
        if self.max_batch < self.batch_size:
            raise UsageError(f"max_batch ({self.max_batch}) must be >= batch_size ({self.batch_size}).")


def available(hp: ExportTensorRTHparams) -> tuple[bool, str]:
    """The CPU-side part needs onnx; TensorRT itself is checked in `run` (after the CPU-side work)."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    return (False, f"{', '.join(missing)} not installed (install lottery[onnx])") if missing else (True, "")


def prepare(src: Path, out_dir: Path) -> dict[str, Any]:
    """Load the ONNX, densify sparse initializers, write `out_dir/model.onnx`, report 2:4 compliance per layer.

    Refuses (ArtifactError/ExportError) only a file that is not an ONNX model or has no fixed sample shape."""
    import onnx

    from compress.io import atomic_write_bytes
    from export import nm_report
    from export.errors import ArtifactError, ExportError
    from export.onnx import read_metadata
    from export.onnx_sparse import to_dense_storage

    try:
        model = onnx.load(str(src))
    except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError and friends
        raise ArtifactError(f"{src} is not an ONNX model ({str(e).splitlines()[0][:200]}); export one with "
                            "`lottery export onnx`.") from e
    n_sparse = len(model.graph.sparse_initializer)
    dense = to_dense_storage(model) if n_sparse else model
    consts = {i.name for i in dense.graph.initializer}
    inputs = [i for i in dense.graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise ExportError(f"{src} has {len(inputs)} graph inputs; lottery builds engines for single-input models.")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) < 2 or any(d is None for d in dims[1:]):
        raise ExportError(f"{src}'s input '{inputs[0].name}' has shape {dims}: only the batch may be dynamic.")
    path = atomic_write_bytes(out_dir / "model.onnx", dense.SerializeToString())
    rows = nm_report.report(dense)
    meta = read_metadata(dense)
    return {"path": path, "input_name": inputs[0].name, "input_shape": tuple(d for d in dims[1:] if d is not None),
            "static_batch": dims[0] or None, "densified": n_sparse, "nm_report": rows,
            "qdq_nodes": sum(n.op_type in QDQ_OPS for n in dense.graph.node),
            "onnx_fp16": any(i.data_type == onnx.TensorProto.FLOAT16 for i in dense.graph.initializer),
            "density": float(meta["density"]) if "density" in meta else None}


def run(ctx: Context) -> Output:
    from export.trt_engine import profile_shapes, tensorrt_available, trtexec_command, write_build_script

    hp: ExportTensorRTHparams = ctx.settings
    prep = prepare(ctx.input("onnx"), ctx.dir)
    profile = profile_shapes(prep["input_shape"], prep["static_batch"], hp.batch_size, hp.max_batch)
    kinds = ["sparse", "dense"] if hp.sparsity == "enable" else ["dense"]
    cmds = [trtexec_command("model.onnx", engine_name(k, hp), k == "sparse", hp.fp16, profile, prep["input_name"],
                            REPORTS[k]) for k in kinds]
    script = write_build_script(ctx.dir, cmds)
    rows = prep["nm_report"]
    good = [r for r in rows if r["compliant"]]
    metrics: dict[str, Any] = {"density": prep["density"], "nm_layers": len(rows), "nm_compliant_layers": len(good),
                               "nm_compliant_fraction": len(good) / len(rows) if rows else None}
    details: dict[str, Any] = {"input": {"name": prep["input_name"], "shape": list(prep["input_shape"]),
                                         "static_batch": prep["static_batch"]},
                               "profile": {k: list(v) for k, v in profile.items()}, "trtexec": cmds,
                               "densified_sparse_initializers": prep["densified"], "qdq_nodes": prep["qdq_nodes"],
                               "nm_report": rows}
    artifacts = {"trt_onnx": prep["path"], "build_script": script}
    notes = _notes(prep, rows)
    ok, reason = tensorrt_available()
    if not ok:
        return Output(metrics, artifacts, notes, details, unavailable=(
            f"TensorRT cannot build engines here ({reason}). Written: model.onnx (dense storage), the 2:4 report "
            f"({len(good)} of {len(rows)} conv/FC layers compliant) and build_engine.sh, to run where TensorRT and "
            "a CUDA GPU are"))
    from export.trt_measure import build_and_measure

    out = build_and_measure(ctx, prep, profile, kinds)
    metrics.update(out.metrics)
    details.update(out.details)
    artifacts.update(out.artifacts)
    return Output(metrics, artifacts, notes + out.notes, details)


def engine_name(kind: str, hp: ExportTensorRTHparams) -> str:
    return "model.dense.plan" if kind == "dense" and hp.sparsity == "enable" else "model.plan"


def _notes(prep: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    notes = []
    if prep["densified"]:
        notes.append(f"densified {prep['densified']} sparse initializer(s) at the ONNX level: TensorRT needs constant "
                     "dense Conv/Gemm weights (the 2:4 pattern is in the values, not the storage).")
    if prep["qdq_nodes"]:
        notes.append(f"the ONNX has {prep['qdq_nodes']} Q/DQ nodes (explicit quantization): TensorRT may then not "
                     "pick 2:4 sparse kernels (NVIDIA/TensorRT#4694); see the sparse layers it reports.")
    bad = [r for r in rows if not r["compliant"]]
    if bad:
        notes.append(f"{len(bad)} of {len(rows)} conv/FC layers are not 2:4 along their input channels and run dense: "
                     + "; ".join(f"{r['layer']} ({r.get('reason', 'not 2:4')})" for r in bad[:5])
                     + ("; ..." if len(bad) > 5 else "") + ". Prune with N:M (2:4) selection to make them eligible.")
    return notes


def default_gates(hp: ExportTensorRTHparams) -> dict[str, float]:
    """Engine vs ONNX Runtime: FP16 gets fp16 tolerances; FP32 engines use TF32 math by default on Ampere+."""
    return {"min_parity": 0.99, "max_parity_diff": 5e-2 if hp.fp16 else 1e-2}


METHOD = Method(
    name="export_tensorrt", command=("export", "tensorrt"), settings=ExportTensorRTHparams, run=run,
    available=available,
    summary="TensorRT engines from an exported ONNX with 2:4 sparse kernels on and off, verified and timed (CUDA GPU)",
    doc="Takes the model.onnx of `lottery export onnx`. Without TensorRT and a CUDA GPU it writes the dense-storage "
        "ONNX, the per-layer 2:4 report and build_engine.sh (trtexec), and exits 2.",
    needs=("onnx",), produces=("plan",),
    metrics=("density", "nm_layers", "nm_compliant_layers", "nm_compliant_fraction", "test_acc", "agreement",
             "parity_agreement", "parity_max_abs_diff", "parity_allclose", "file_bytes", "latency_ms_p50",
             "latency_ms_p90", "dense_latency_ms_p50", "latency_ratio", "sparse_layers", "sparse_eligible_layers",
             "dense_parity_agreement", "dense_parity_max_abs_diff"),
    gates=default_gates,
)
