"""`export_onnx` (`lottery export onnx`): a ticket -> `model.onnx`, masks baked in, BatchNorm folded, its parity
with PyTorch measured on the whole test set (the runner's parity gates decide, the exporter only measures).

Pipeline: load the ticket (pruned weights are exact zeros: plain Conv/Gemm, no mask ops) -> fold BatchNorm
where exact -> TorchScript ONNX export -> metadata_props (ticket digest, density, measured accuracy) ->
optional sparse-initializer storage -> checks (ONNX checker, ORT vs PyTorch, providers) -> atomic write.
Refused (nothing written) only when the model cannot be exported or run at all: an op the exporter cannot
write, a graph the ONNX checker rejects, a provider ORT cannot load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compress.hparams import Hparams, setting
from compress.method import Context, Method, Output

log = logging.getLogger("lottery")
FORMAT = "lottery.onnx/2"
STORAGE = ("auto", "dense", "coo")
PROVIDERS = ("cpu", "cuda", "tensorrt")
ORT_NOTE = ("ONNX Runtime densifies sparse initializers when it loads the model: sparse storage saves download "
            "and disk size, not inference time; ORT has no kernels that skip unstructured zeros.")


@dataclass(frozen=True)
class ExportOnnxHparams(Hparams):
    opset: int = setting(17, lo=13, hi=20, help="ONNX opset.")
    sparse_storage: str = setting("auto", choices=STORAGE, help="auto: sparse initializers where they make the "
                                                                "file smaller; dense; coo (every prunable weight).")
    fp16: bool = setting(False, help="fp16 weights and compute (float32 input/output).")
    batch: int = setting(0, lo=0, help="Static batch size; 0 = dynamic batch.")
    provider: str = setting("cpu", choices=PROVIDERS, digest=False,
                            help="ONNX Runtime provider the parity check runs on.")


def available(hp: ExportOnnxHparams) -> tuple[bool, str]:
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    return (False, f"{', '.join(missing)} not installed (install lottery[onnx])") if missing else (True, "")


def ticket_sha256(ticket_dir: Path) -> str:
    """Digest of the ticket's content (ticket.json, mask, weights): names exactly what was exported."""
    h = hashlib.sha256()
    for name in ("ticket.json", "mask.safetensors", "final.safetensors", "init.safetensors"):
        p = ticket_dir / name
        if p.is_file():
            h.update(name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def set_metadata(model: Any, meta: dict[str, Any]) -> None:
    """Write `meta` into the ModelProto's metadata_props (values as strings, JSON for non-strings)."""
    del model.metadata_props[:]
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = f"lottery.{k}", v if isinstance(v, str) else json.dumps(v)


def read_metadata(model: Any) -> dict[str, str]:
    return {p.key.removeprefix("lottery."): p.value for p in model.metadata_props if p.key.startswith("lottery.")}


def export_onnx(ticket_dir: str | Path, out_dir: str | Path, opset: int = 17, sparse_storage: str = "auto",
                fp16: bool = False, batch: int | None = None, provider: str = "cpu", dataset: str | None = None,
                threads: int | None = None) -> dict[str, Any]:
    """Export the ticket in `ticket_dir` to `out_dir/model.onnx`; returns what was measured (parity included).

    Nothing is written when the graph cannot be exported or checked; a parity shortfall is measured and
    returned, for the caller's gates to judge."""
    from compress import data as datasets
    from compress.errors import UsageError
    from compress.io import atomic_write_bytes
    from compress.ticket import Ticket
    from compress.train import evaluate
    from export.fold_bn import fold_batchnorm
    from export.onnx_graph import to_onnx
    from export.onnx_sparse import to_sparse_storage
    from export.verify_onnx import verify

    start = time.perf_counter()
    ticket_dir = Path(ticket_dir).resolve()
    ticket = Ticket.load(ticket_dir)
    model = ticket.model("final").eval()
    folded, fold = fold_batchnorm(model)
    dense = to_onnx(folded, tuple(ticket.spec.input_shape), opset, batch or None, fp16)
    ds_name = dataset or ticket.meta.get("dataset")
    if not ds_name:
        raise UsageError(f"the ticket in {ticket_dir} does not record its dataset; pass --dataset.")
    x, y = datasets.get(ds_name).split("test")
    _, torch_acc = evaluate(model, x, y)
    set_metadata(dense, {
        "format": FORMAT, "ticket_sha256": ticket_sha256(ticket_dir),
        "hparams_digest": str(ticket.meta.get("digest", "")), "model": ticket.spec.name,
        "dataset": ds_name, "input_shape": list(ticket.spec.input_shape), "density": ticket.density,
        "test_acc": torch_acc, "level": ticket.meta.get("level"), "seed": ticket.meta.get("seed"), "fp16": fp16,
    })
    stored, storage = to_sparse_storage(dense, sparse_storage)
    sparse_used = len(stored.graph.sparse_initializer) > 0
    checks = verify(dense, stored if sparse_used else None, model, x, y, provider, fp16, threads)
    data = stored.SerializeToString()
    path = atomic_write_bytes(Path(out_dir) / "model.onnx", data)
    log.info("wrote %s (%d bytes, %.2fx the dense-storage file); ORT agreement %.2f%%, max abs diff %.2g",
             path, len(data), len(data) / max(1, dense.ByteSize()), 100 * checks["agreement"], checks["max_abs_diff"])
    return {
        "artifact": path, "model": ticket.spec.name, "dataset": ds_name, "input_shape": list(ticket.spec.input_shape),
        "density": ticket.density, "opset": opset, "fp16": fp16, "batch": batch or "dynamic",
        "file_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        "file_bytes_dense_storage": dense.ByteSize(),
        "sparse_initializers": len(stored.graph.sparse_initializer), "storage": storage,
        "bn_folding": fold.to_dict(), "ops": sorted({n.op_type for n in dense.graph.node}), "verification": checks,
        "test_acc": checks["ort_test_acc"], "torch_test_acc": torch_acc, "logits": checks.pop("logits"),
        "note": ORT_NOTE if sparse_used else "dense storage", "wall_s": round(time.perf_counter() - start, 3),
    }


def run(ctx: Context) -> Output:
    import torch

    from compress.measure import agreement
    from compress.ticket import Ticket

    hp: ExportOnnxHparams = ctx.settings
    ticket_dir = ctx.input("ticket")
    rep = export_onnx(ticket_dir, ctx.dir, hp.opset, hp.sparse_storage, hp.fp16, hp.batch, hp.provider,
                      ctx.scope.dataset)
    v = rep["verification"]
    base = None if ctx.baseline is None else ctx.baseline.artifacts.get("predictions")
    metrics = {"test_acc": rep["test_acc"], "torch_test_acc": rep["torch_test_acc"], "density": rep["density"],
               "file_bytes": rep["file_bytes"], "file_bytes_dense_storage": rep["file_bytes_dense_storage"],
               "storage_bytes": _storage(Ticket.load(ticket_dir)),
               "agreement": agreement(base, torch.from_numpy(rep["logits"].argmax(1))),
               "parity_agreement": v["agreement"], "parity_max_abs_diff": v["max_abs_diff"],
               "parity_allclose": v["allclose"]}
    details = {k: rep[k] for k in ("model", "dataset", "input_shape", "opset", "fp16", "batch", "sparse_initializers",
                                   "storage", "bn_folding", "ops")}
    details["verification"] = {k: v[k] for k in v if k != "logits"}
    return Output(metrics, {"onnx": rep["artifact"]}, [rep["note"]], details)


def _storage(ticket: Any) -> int:
    from compress.measure import storage_bytes

    return storage_bytes(ticket)


def default_gates(hp: ExportOnnxHparams) -> dict[str, float]:
    """torch.onnx's verification convention: every top-1 equal, outputs within a small tolerance (fp16: looser)."""
    return {"min_parity": 0.99, "max_parity_diff": 5e-2} if hp.fp16 else {"min_parity": 1.0, "max_parity_diff": 1e-3}


METHOD = Method(
    name="export_onnx", command=("export", "onnx"), settings=ExportOnnxHparams, run=run, available=available,
    summary="Export a ticket to ONNX; parity with PyTorch measured on the whole test set and gated",
    doc="Pruned weights are stored as ONNX sparse initializers where that is smaller (sparse_storage auto): a "
        "smaller download and file, not a faster model (ONNX Runtime densifies them at load).",
    needs=("ticket",), produces=("onnx",),
    metrics=("test_acc", "torch_test_acc", "density", "file_bytes", "file_bytes_dense_storage", "storage_bytes",
             "agreement", "parity_agreement", "parity_max_abs_diff", "parity_allclose"),
    gates=default_gates,
)
