"""`export_lce` (`lottery export lce INPUT`): a binarized ticket -> `model.tflite` for Larq Compute Engine
(bit-packed binary ops), its parity with PyTorch measured on the whole test set (the gates judge it).

PyTorch side only: describe the network (export.lce_graph), run the TensorFlow worker (export.lce_worker) in a
torch-free subprocess, then measure the result against PyTorch (export.verify_lce) and write `model.tflite`.
Refused: a float ticket (nothing to bit-pack), layers LCE cannot express, a binary layer that lost its bit-packed
op. Larq Compute Engine: Bannink et al., "Larq Compute Engine: Design, Benchmark, and Deploy State-of-the-Art
Binarized Neural Networks" (MLSys 2021).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.errors import BackendUnavailableError, UsageError
from compress.hparams import Hparams, setting
from compress.method import Context, Method, Output
from export import child
from export.errors import ExportError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from export.lce_graph import Graph

log = logging.getLogger("lottery")
ROOT = Path(__file__).resolve().parents[1]
NOTE = ("x86 runs of the .tflite use LCE's reference kernels (correct, not optimized); ARM latency is only "
        "known once measured on the device (`lottery deploy edge --host`).")


class NotBinaryError(UsageError):
    """A ticket with no binary layer: nothing for LCE to bit-pack."""


class WorkerError(ExportError):
    """The TensorFlow/LCE conversion subprocess failed."""


def to_nhwc(x: np.ndarray) -> np.ndarray:
    """Torch NCHW samples -> the NHWC layout of the .tflite input (vectors unchanged)."""
    import numpy as np

    return np.ascontiguousarray(x.transpose(0, 2, 3, 1) if x.ndim == 4 else x, dtype=np.float32)


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])]))
    return env


def run_worker(jobs: list[Path], timeout: float | None = None) -> None:
    """Convert every job dir in ONE torch-free subprocess (TensorFlow start-up costs seconds); the worker
    dies with this process (export.child)."""
    import importlib.util

    missing = [m for m in ("tensorflow", "larq", "larq_compute_engine") if importlib.util.find_spec(m) is None]
    if missing:
        raise BackendUnavailableError(f"LCE export needs {', '.join(missing)}: install the edge extra "
                                      "(`pip install -e .[edge]`, done by `bash .ci/setup`).")
    proc = child.run([sys.executable, "-m", "export.lce_worker", *map(str, jobs)], env=worker_env(), cwd=ROOT,
                     timeout=timeout)
    if proc.returncode != 0:
        raise WorkerError(f"the LCE conversion worker failed ({child.exit_text(proc.returncode)}); last lines:\n"
                          f"{child.tail(proc.stderr or proc.stdout, 8)}")


def require_binary(model: nn.Module, where: str) -> None:
    from compress.binarize.layers import BINARY_TYPES

    if not any(isinstance(m, BINARY_TYPES) for m in model.modules()):
        raise NotBinaryError(f"{where} is a float (non-binarized) ticket: it has no BinaryConv2d/BinaryLinear "
                             "layer for LCE to bit-pack. Binarize it first (`lottery binarize RUN_DIR`) or find "
                             "a Multi-Prize Ticket (`lottery find mpt`), then export that.")


def prepare_job(job: Path, graph: Graph, x: np.ndarray | None) -> Path:
    import numpy as np

    job.mkdir(parents=True, exist_ok=True)
    (job / "graph.json").write_text(json.dumps(graph.to_json()))
    np.savez(job / "arrays.npz", **graph.arrays)
    if x is not None:
        np.save(job / "x.npy", to_nhwc(x))
    return job


def export_model(model: nn.Module, input_shape: tuple[int, ...], x: torch.Tensor, y: torch.Tensor, job: Path,
                 min_agreement: float = 0.99, convert: bool = True, float_layers: str = "float32") -> dict[str, Any]:
    """Describe, convert (in `job`) and verify `model`; returns the verification report (no final files)."""
    from export.lce_graph import describe

    model = model.eval()
    graph = describe(model, input_shape, float_layers)
    for w in graph.warnings:
        log.warning("warning: %s", w)
    prepare_job(job, graph, x.numpy())
    if convert:
        run_worker([job])
    return finish_job(job, graph, model, x, y, min_agreement)


def finish_job(job: Path, graph: Graph, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               min_agreement: float) -> dict[str, Any]:
    """Verification of a converted job dir against PyTorch (see export.verify_lce)."""
    import numpy as np

    from compress.train import predict
    from export.verify_lce import verify

    torch_out = predict(model.eval(), x).numpy()
    lce_out = np.load(job / "lce_out.npy")
    ops = json.loads((job / "ops.json").read_text())
    report = verify(graph, ops, torch_out, lce_out, y.numpy(), min_agreement)
    report["warnings"] = list(graph.warnings)
    report["tflite_bytes"] = (job / "model.tflite").stat().st_size
    report["lce_logits"] = lce_out
    return report


def export_lce(ticket_dir: str | Path, out_dir: str | Path, dataset: str | None = None,
               float_layers: str = "float32") -> dict[str, Any]:
    """Export the ticket in `ticket_dir` to `out_dir/model.tflite`; returns what was measured (parity included).

    `float_layers="int8"` stores the weights of the layers LCE keeps in float as per-channel int8
    (export.lce_int8); verification then also requires them to be INT8 in the flatbuffer."""
    from compress import data as datasets
    from export.lce_int8 import check_float_layers

    check_float_layers(float_layers)
    from compress import scratch
    from compress.io import atomic_write_bytes
    from compress.ticket import Ticket

    ticket_dir = Path(ticket_dir)
    ticket = Ticket.load(ticket_dir)
    model = ticket.model("final").eval()
    require_binary(model, str(ticket_dir))
    ds_name = dataset or ticket.meta.get("dataset")
    if not ds_name:
        raise UsageError(f"the ticket in {ticket_dir} does not record its dataset; pass --dataset.")
    x, y = datasets.get(ds_name).split("test")
    out_dir = Path(out_dir)
    with scratch.folder(out_dir, ".lce-job-") as job:  # inside the output dir: a crash leaves nothing in /tmp
        report = export_model(model, tuple(ticket.spec.input_shape), x, y, job, float_layers=float_layers)
        flatbuffer = (job / "model.tflite").read_bytes()
        artifact = atomic_write_bytes(out_dir / "model.tflite", flatbuffer)
    return {"artifact": artifact, "format": "tflite (Larq Compute Engine, target arm)", "model": ticket.spec.name,
            "dataset": ds_name, "input_shape": list(ticket.spec.input_shape),
            "input_layout": "NHWC" if x.ndim == 4 else "NF", "density": ticket.density,
            "file_bytes": len(flatbuffer), "sha256": hashlib.sha256(flatbuffer).hexdigest(), "note": NOTE, **report}


@dataclass(frozen=True)
class ExportLceHparams(Hparams):
    float_layers: str = setting("float32", choices=("float32", "int8"),
                                help="Weights of the layers LCE keeps in float (first/last, binary weights on "
                                     "float inputs): float32, or int8 per output channel (a smaller file; the layers "
                                     "still compute in float32, so RAM and speed are unchanged).")


def available(hp: Any) -> tuple[bool, str]:
    import importlib.util

    missing = [m for m in ("tensorflow", "larq", "larq_compute_engine") if importlib.util.find_spec(m) is None]
    return (False, f"{', '.join(missing)} not installed (install lottery[edge])") if missing else (True, "")


def run(ctx: Context) -> Output:
    import torch

    from compress.measure import agreement

    rep = export_lce(ctx.input("binary_ticket"), ctx.dir, ctx.scope.dataset, ctx.settings.float_layers)
    base = None if ctx.baseline is None else ctx.baseline.artifacts.get("predictions")
    metrics = {"test_acc": rep["lce_test_acc"], "torch_test_acc": rep["torch_test_acc"], "density": rep["density"],
               "file_bytes": rep["file_bytes"], "parity_agreement": rep["agreement"],
               "parity_max_abs_diff": rep["max_abs_diff"], "packed_fraction": rep["packed_fraction"],
               "binary_layer_bits_per_weight": rep["binary_bits_per_weight"],
               "float_layer_bits_per_weight": rep.get("float_bits_per_weight"),
               "agreement": agreement(base, torch.from_numpy(rep.pop("lce_logits").argmax(1)))}
    details = {k: v for k, v in rep.items() if k not in ("artifact", "note")}
    return Output(metrics, {"tflite": rep["artifact"]}, [rep["note"], *rep.get("warnings", [])], details)


METHOD = Method(
    name="export_lce", command=("export", "lce"), settings=ExportLceHparams, run=run, available=available,
    summary="Export a binarized ticket to a bit-packed Larq Compute Engine .tflite; parity measured and gated",
    doc="Binary layers with binary activations become LceBconv2d with bit-packed weights (ternary layers exactly, "
        "as two averaged binary kernels); the LCE interpreter is checked against PyTorch on the whole test set.",
    needs=("binary_ticket",), produces=("tflite",),
    metrics=("test_acc", "torch_test_acc", "density", "file_bytes", "parity_agreement", "parity_max_abs_diff",
             "packed_fraction", "binary_layer_bits_per_weight", "float_layer_bits_per_weight", "agreement"),
    gates={"min_parity": 0.99, "min_packed_fraction": 0.5},
)
