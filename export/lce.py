"""`export_lce`: a binarized ticket -> a verified `model.tflite` for Larq Compute Engine (bit-packed binary ops).

PyTorch side only: describe the network (export.lce_graph), run the TensorFlow worker (export.lce_worker) in a
torch-free subprocess, then verify the result against PyTorch on the whole test set (export.verify_lce) before
`model.tflite` and `export.json` are written. Larq Compute Engine: Bannink et al., "Larq Compute Engine:
Design, Benchmark, and Deploy State-of-the-Art Binarized Neural Networks" (MLSys 2021).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from compress import data as datasets
from compress.binarize.layers import BINARY_TYPES
from compress.errors import BackendUnavailableError, UsageError
from compress.io import atomic_write_bytes, save_json
from compress.ticket import Ticket
from compress.train import predict
from export.errors import ExportError
from export.lce_graph import Graph, describe
from export.lce_int8 import check_float_layers
from export.verify_lce import verify

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
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1) if x.ndim == 4 else x, dtype=np.float32)


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])]))
    return env


def run_worker(jobs: list[Path]) -> None:
    """Convert every job dir in ONE torch-free subprocess (TensorFlow start-up costs seconds)."""
    import importlib.util

    missing = [m for m in ("tensorflow", "larq", "larq_compute_engine") if importlib.util.find_spec(m) is None]
    if missing:
        raise BackendUnavailableError(f"LCE export needs {', '.join(missing)}: install the edge extra "
                                      "(`pip install -e .[edge]`, done by `bash .ci/setup`).")
    proc = subprocess.run([sys.executable, "-m", "export.lce_worker", *map(str, jobs)], env=worker_env(),
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        raise WorkerError(f"the LCE conversion worker failed (exit {proc.returncode}); last lines:\n{tail}")


def require_binary(model: nn.Module, where: str) -> None:
    if not any(isinstance(m, BINARY_TYPES) for m in model.modules()):
        raise NotBinaryError(f"{where} is a float (non-binarized) ticket: it has no BinaryConv2d/BinaryLinear "
                             "layer for LCE to bit-pack. Binarize it first (`lottery binarize RUN_DIR`) or find "
                             "a Multi-Prize Ticket (`lottery find mpt`), then export that.")


def prepare_job(job: Path, graph: Graph, x: np.ndarray | None) -> Path:
    job.mkdir(parents=True, exist_ok=True)
    (job / "graph.json").write_text(json.dumps(graph.to_json()))
    np.savez(job / "arrays.npz", **graph.arrays)
    if x is not None:
        np.save(job / "x.npy", to_nhwc(x))
    return job


def export_model(model: nn.Module, input_shape: tuple[int, ...], x: torch.Tensor, y: torch.Tensor, job: Path,
                 min_agreement: float = 0.99, convert: bool = True, float_layers: str = "float32") -> dict[str, Any]:
    """Describe, convert (in `job`) and verify `model`; returns the verification report (no final files)."""
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
    torch_out = predict(model.eval(), x).numpy()
    lce_out = np.load(job / "lce_out.npy")
    ops = json.loads((job / "ops.json").read_text())
    report = verify(graph, ops, torch_out, lce_out, y.numpy(), min_agreement)
    report["warnings"] = list(graph.warnings)
    report["tflite_bytes"] = (job / "model.tflite").stat().st_size
    return report


def export_lce(ticket_dir: str | Path, out: str | Path | None = None, dataset: str | None = None,
               min_agreement: float = 0.99, float_layers: str = "float32") -> dict[str, Any]:
    """Export the ticket in `ticket_dir` to `OUT/model.tflite` (default TICKET/lce) + `export.json`, verified.

    `float_layers="int8"` stores the weights of the layers LCE keeps in float as per-channel int8
    (export.lce_int8); verification then also requires them to be INT8 in the flatbuffer.
    """
    check_float_layers(float_layers)
    ticket_dir = Path(ticket_dir)
    ticket = Ticket.load(ticket_dir)
    model = ticket.model("final").eval()
    require_binary(model, str(ticket_dir))
    ds_name = dataset or ticket.meta.get("dataset")
    if not ds_name:
        raise UsageError(f"the ticket in {ticket_dir} does not record its dataset; pass --dataset.")
    x, y = datasets.get(ds_name).split("test")
    out_dir = Path(out) if out is not None else ticket_dir / "lce"
    out_dir.mkdir(parents=True, exist_ok=True)
    job = Path(tempfile.mkdtemp(prefix=".lce-job-", dir=out_dir))
    try:
        report = export_model(model, tuple(ticket.spec.input_shape), x, y, job, min_agreement,
                              float_layers=float_layers)
        artifact = out_dir / "model.tflite"
        atomic_write_bytes(artifact, (job / "model.tflite").read_bytes())
    finally:
        shutil.rmtree(job, ignore_errors=True)
    report = {"artifact": str(artifact), "format": "tflite (Larq Compute Engine, target arm)",
              "ticket_dir": str(ticket_dir.resolve()), "model": ticket.spec.name, "dataset": ds_name,
              "input_shape": list(ticket.spec.input_shape), "input_layout": "NHWC" if x.ndim == 4 else "NF",
              "density": ticket.density, "size_bytes": artifact.stat().st_size, "note": NOTE, **report}
    save_json(out_dir / "export.json", report)
    return report
