"""`bench`: evaluate any artifact on its deploy target, with the PyTorch eager model measured in the same run.

The target is chosen by suffix (`deploy_targets.for_artifact`), so new artifact kinds plug in without
changes here. The ticket behind the artifact is found from `export.json` beside it (or the artifact's own
metadata); its eager model is timed with the same harness, threads and batch sizes, for the ratio.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

import deploy_targets
from compress import data as datasets
from compress.errors import BackendUnavailableError, ShapeMismatchError, UsageError
from compress.io import load_json, save_json
from compress.ticket import TICKET_FILE, Ticket
from deploy_targets.latency import sweep, torch_threads
from export.errors import ArtifactError

log = logging.getLogger("lottery")
SHARED_NOTE = "measured on a shared 2-core CPU machine; absolute latencies are noisy, ratios are same-run"


def artifact_info(path: Path, target: Any) -> dict[str, Any]:
    """What the exporter recorded about `path`: export.json beside it, else the artifact's metadata."""
    report = path.parent / "export.json"
    if report.is_file():
        info = load_json(report)
        if isinstance(info, dict):
            return info
    if hasattr(target, "metadata"):
        meta = target.metadata(path)
        out: dict[str, Any] = dict(meta)
        if "input_shape" in meta:
            out["input_shape"] = [int(v) for v in meta["input_shape"].strip("[]").split(",")]
        return out
    return {}


def eager_reference(ticket_dir: Path, x: torch.Tensor, y: torch.Tensor, input_shape: tuple[int, ...],
                    batch_sizes: tuple[int, ...], threads: int, warmup: int, iters: int) -> dict[str, Any]:
    """Accuracy, logits and latency of the ticket's PyTorch eager model (masked, eval mode)."""
    model = Ticket.load(ticket_dir).model("final").eval()
    with torch_threads(threads), torch.no_grad():
        logits = torch.cat([model(x[i : i + 500]) for i in range(0, len(x), 500)]).numpy()

        def runner(b: int):
            xb = torch.randn(b, *input_shape, generator=torch.Generator().manual_seed(0))
            return lambda: model(xb)

        lat = sweep(runner, batch_sizes, warmup, iters)
    return {"test_acc": float((logits.argmax(1) == y.numpy()).mean()), "logits": logits, "batch": lat,
            "threads": threads}


def bench(artifact: str | Path, dataset: str | None = None, batch_sizes: tuple[int, ...] = (1, 64),
          threads: int = 1, warmup: int = 10, iters: int = 100, provider: str | None = None,
          eager: bool = True, report_dir: str | Path | None = None) -> dict[str, Any]:
    """Evaluate and time `artifact`; write `bench-<name>.json` into `report_dir` (default: beside the
    artifact) and return the report."""
    path = Path(artifact)
    if not path.is_file():
        raise ArtifactError(f"{path} does not exist or is not a file; pass an exported artifact "
                            f"({', '.join(deploy_targets.suffixes())}).")
    if threads < 1 or any(b < 1 for b in batch_sizes):
        raise UsageError("--threads and every --batch-size must be >= 1.")
    options: dict[str, Any] = {"threads": threads, "warmup": warmup, "iters": iters}
    if provider:
        options["provider"] = provider
    target = deploy_targets.for_artifact(path, **options)
    ok, reason = target.available()
    if not ok:
        raise BackendUnavailableError(f"cannot benchmark {path.name} here: {reason}.")
    info = artifact_info(path, target)
    ds_name = dataset or info.get("dataset")
    if not ds_name:
        raise UsageError(f"{path} records no dataset (no export.json beside it); pass --dataset.")
    data = datasets.get(ds_name)
    if info.get("input_shape") and tuple(info["input_shape"]) != data.input_shape:
        raise ShapeMismatchError(f"{path.name} takes inputs of shape {tuple(info['input_shape'])}, dataset "
                                 f"{ds_name} has samples of shape {data.input_shape}; pick the dataset it was "
                                 f"exported for ({info.get('dataset', '?')}).")
    x, y = data.split("test")
    ev = target.evaluate(path, x.numpy(), y.numpy())
    lat = target.benchmark(path, data.input_shape, batch_sizes)
    report: dict[str, Any] = {
        "artifact": str(path), "size_bytes": path.stat().st_size, "target": target.name, "target_info": reason,
        "dataset": ds_name, "samples": len(y), "test_acc": ev["test_acc"], "providers": ev.get("providers"),
        "threads": threads, "warmup": warmup, "iters": iters, "latency": lat, "note": SHARED_NOTE,
    }
    ticket_dir = Path(info["ticket_dir"]) if info.get("ticket_dir") else None
    if eager and ticket_dir is not None and (ticket_dir / TICKET_FILE).is_file():
        ref = eager_reference(ticket_dir, x, y, data.input_shape, tuple(int(b) for b in lat["batch"]), threads,
                              warmup, iters)
        report["torch"] = {"test_acc": ref["test_acc"], "latency": ref["batch"], "ticket_dir": str(ticket_dir)}
        report["agreement_vs_torch"] = float((ref["logits"].argmax(1) == ev["logits"].argmax(1)).mean())
        report["max_abs_diff_vs_torch"] = float(np.abs(ref["logits"] - ev["logits"]).max())
        report["speedup_p50_vs_torch"] = {
            b: ref["batch"][b]["latency_ms_p50"] / r["latency_ms_p50"] for b, r in lat["batch"].items()}
    elif eager:
        report["torch"] = None
        log.warning("no ticket found for %s (export.json/metadata name none, or it moved): no eager reference", path)
    save_json(Path(report_dir or path.parent) / f"bench-{path.name}.json", report)
    return report
