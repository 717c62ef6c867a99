"""The GPU half of `export_tensorrt`: build the engines, read which layers ran sparse, check parity, time them.

Parity is each engine's logits against ONNX Runtime's on the same ONNX over the whole test set (measured
here, judged by the runner's gates). Latency uses the TensorRT deploy target, i.e. the shared harness in
deploy_targets.latency, at the same batch size for both engines; `latency_ratio` = sparse / dense p50.
Importing deploy_targets from export is the one upward import of the export path: the measuring code lives
there and is shared with `lottery bench`.
"""

from __future__ import annotations

from typing import Any

from compress.io import atomic_write_bytes
from compress.method import Context, Output


def build_and_measure(ctx: Context, prep: dict[str, Any], profile: dict[str, tuple[int, ...]],
                      kinds: list[str]) -> Output:
    """Engines for `kinds` ("sparse" first, then its "dense" twin; or "dense" alone), measured."""
    import torch

    from compress.errors import ShapeMismatchError
    from compress.measure import agreement
    from deploy_targets.tensorrt import TensorRTTarget
    from export import trt_layers
    from export.ort_session import run, session
    from export.tensorrt import REPORTS, engine_name
    from export.trt_engine import build_engine
    from export.verify_onnx import compare

    hp = ctx.settings
    data = ctx.data()
    if tuple(data.input_shape) != tuple(prep["input_shape"]):
        raise ShapeMismatchError(f"{ctx.input('onnx')} takes inputs of shape {tuple(prep['input_shape'])}, but "
                                 f"dataset '{data.name}' has samples of shape {tuple(data.input_shape)}; pass the "
                                 "dataset it was exported for (--dataset).")
    x, y = data.split("test")
    ref = run(session(prep["path"]), x.numpy())
    precision = "fp16" if hp.fp16 or prep["onnx_fp16"] else "fp32"
    target = TensorRTTarget(warmup=hp.warmup, iters=hp.iters)
    engines: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        b = build_engine(prep["path"], ctx.dir / engine_name(kind, hp), kind == "sparse", hp.fp16, profile,
                         prep["input_name"], hp.workspace_mib << 20)
        atomic_write_bytes(ctx.dir / REPORTS[kind], b["layer_info"].encode())
        rows = trt_layers.parse(b["layer_info"])
        ev = target.evaluate(b["engine"], x.numpy(), y.numpy())
        lat = target.benchmark(b["engine"], tuple(prep["input_shape"]), (hp.batch_size,))
        engines[kind] = {"engine": b["engine"], "file_bytes": b["file_bytes"], "trt_version": b["trt_version"],
                         "test_acc": ev["test_acc"], "logits": ev["logits"], "parity": compare(ref, ev["logits"],
                                                                                               precision),
                         "latency": lat, "layers": rows, "sparsity": trt_layers.summary(rows)}
    main = engines[kinds[0]]
    p50, p90 = _at(main["latency"], "latency_ms_p50"), _at(main["latency"], "latency_ms_p90")
    base = None if ctx.baseline is None else ctx.baseline.artifacts.get("predictions")
    metrics: dict[str, Any] = {
        "test_acc": main["test_acc"], "agreement": agreement(base, torch.from_numpy(main["logits"].argmax(1))),
        "parity_agreement": main["parity"]["agreement"], "parity_max_abs_diff": main["parity"]["max_abs_diff"],
        "parity_allclose": main["parity"]["allclose"], "file_bytes": main["file_bytes"], "latency_ms_p50": p50,
        "latency_ms_p90": p90, "sparse_layers": len(main["sparsity"]["sparse"]),
        "sparse_eligible_layers": len(main["sparsity"]["eligible"])}
    if "sparse" in engines:
        dense = engines["dense"]
        d50 = _at(dense["latency"], "latency_ms_p50")
        metrics.update(dense_latency_ms_p50=d50, latency_ratio=p50 / d50 if d50 else None,
                       dense_parity_agreement=dense["parity"]["agreement"],
                       dense_parity_max_abs_diff=dense["parity"]["max_abs_diff"])
    notes = []
    if not main["sparsity"]["detailed"]:
        notes.append("TensorRT reported layer names only (no tactics): which layers ran sparse is unknown.")
    keep = ("file_bytes", "trt_version", "test_acc", "parity", "latency", "sparsity", "layers")
    details = {"engines": {k: {n: e[n] for n in keep} for k, e in engines.items()}, "precision": precision,
               "sparse_layers": main["sparsity"]["sparse"], "eligible_layers": main["sparsity"]["eligible"],
               "sparse_onnx_layers": main["sparsity"]["sparse_onnx_layers"],
               "compliant_layers_run_dense": [r["layer"] for r in prep["nm_report"] if r["compliant"]
                                              and r["layer"] not in main["sparsity"]["sparse_onnx_layers"]]}
    artifacts = {"plan": main["engine"], **({"dense_plan": engines["dense"]["engine"]} if "sparse" in engines else {})}
    return Output(metrics, artifacts, notes, details)


def _at(latency: dict[str, Any], key: str) -> float:
    """The one measured batch size's value (a static-batch engine is timed at its own batch)."""
    return float(next(iter(latency["batch"].values()))[key])
