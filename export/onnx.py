"""`export_onnx`: a ticket -> a verified `model.onnx` (+ `export.json`), masks baked in, BN folded.

Pipeline: load the ticket (pruned weights are exact zeros: plain Conv/Gemm, no mask ops) -> fold
BatchNorm where exact -> TorchScript ONNX export -> metadata_props (ticket digest, density, measured
accuracy) -> optional sparse-initializer storage -> verification (checker, ORT vs PyTorch on the whole
test set, providers) -> atomic write. Nothing is written unless every check passed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from compress import data as datasets
from compress.errors import UsageError
from compress.io import atomic_write_bytes, save_json
from compress.ticket import TICKET_FILE, Ticket
from compress.train import evaluate
from export.fold_bn import fold_batchnorm
from export.onnx_graph import to_onnx
from export.onnx_sparse import MODES, to_sparse_storage
from export.verify_onnx import verify

log = logging.getLogger("lottery")
FORMAT = "lottery.onnx/1"
REPORT = "export.json"
ORT_NOTE = ("ONNX Runtime densifies sparse initializers when it loads the model: sparse storage saves download "
            "and disk size, not inference time; ORT has no kernels that skip unstructured zeros.")


def ticket_sha256(ticket_dir: Path) -> str:
    """Digest of the ticket's content (ticket.json, mask, weights): names exactly what was exported."""
    h = hashlib.sha256()
    for name in (TICKET_FILE, "mask.safetensors", "final.safetensors", "init.safetensors"):
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


def export_onnx(ticket_dir: str | Path, out_dir: str | Path | None = None, opset: int = 17,
                sparse_storage: str = "auto", fp16: bool = False, batch: int | None = None,
                provider: str = "cpu", dataset: str | None = None, threads: int | None = None) -> dict[str, Any]:
    """Export and verify the ticket in `ticket_dir`; writes `model.onnx` and `export.json` to `out_dir`."""
    start = time.perf_counter()
    if sparse_storage not in MODES:
        raise UsageError(f"--sparse-storage must be one of {', '.join(MODES)}, got '{sparse_storage}'.")
    if batch is not None and batch < 1:
        raise UsageError(f"--batch must be >= 1 (or omitted for a dynamic batch), got {batch}.")
    ticket_dir = Path(ticket_dir).resolve()
    ticket = Ticket.load(ticket_dir)
    out = Path(out_dir) if out_dir is not None else ticket_dir / "onnx"
    model = ticket.model("final").eval()
    folded, fold = fold_batchnorm(model)
    dense = to_onnx(folded, tuple(ticket.spec.input_shape), opset, batch, fp16)
    ds_name = dataset or ticket.meta.get("dataset")
    if not ds_name:
        raise UsageError(f"the ticket in {ticket_dir} does not record its dataset; pass --dataset.")
    x, y = datasets.get(ds_name).split("test")
    _, torch_acc = evaluate(model, x, y)
    set_metadata(dense, {
        "format": FORMAT, "ticket_dir": str(ticket_dir), "ticket_sha256": ticket_sha256(ticket_dir),
        "hparams_digest": str(ticket.meta.get("digest", "")), "model": ticket.spec.name,
        "dataset": ds_name, "input_shape": list(ticket.spec.input_shape), "density": ticket.density,
        "test_acc": torch_acc, "level": ticket.meta.get("level"), "seed": ticket.meta.get("seed"),
        "fp16": fp16,
    })
    stored, storage = to_sparse_storage(dense, sparse_storage)
    sparse_used = len(stored.graph.sparse_initializer) > 0
    checks = verify(dense, stored if sparse_used else None, model, x, y, provider, fp16, threads)
    data = stored.SerializeToString()
    path = atomic_write_bytes(out / "model.onnx", data)
    report = {
        "artifact": str(path), "format": FORMAT, "ticket_dir": str(ticket_dir), "model": ticket.spec.name,
        "dataset": ds_name, "input_shape": list(ticket.spec.input_shape), "density": ticket.density,
        "opset": opset, "fp16": fp16, "batch": batch or "dynamic", "sparse_storage": sparse_storage,
        "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes_dense_storage": dense.ByteSize(),
        "size_ratio_vs_dense_storage": len(data) / max(1, dense.ByteSize()),
        "sparse_initializers": len(stored.graph.sparse_initializer), "storage": storage,
        "bn_folding": fold.to_dict(), "ops": sorted({n.op_type for n in dense.graph.node}),
        "verification": checks, "test_acc": checks["ort_test_acc"], "torch_test_acc": torch_acc,
        "note": ORT_NOTE if sparse_used else "dense storage", "wall_s": round(time.perf_counter() - start, 3),
    }
    save_json(out / REPORT, report)
    log.info("wrote %s (%d bytes, %.2fx the dense-storage file); ORT agreement %.2f%%, max abs diff %.2g",
             path, len(data), report["size_ratio_vs_dense_storage"], 100 * checks["agreement"],
             checks["max_abs_diff"])
    return report
