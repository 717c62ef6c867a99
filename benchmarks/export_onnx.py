"""Benchmark: ONNX export of LeNet-300-100 and Conv-4 (width 0.25) tickets on mnist5k, dense and ~10% dense.

Tickets come from a real IMP run (`lottery find imp`: 3 rounds at 54% per round, ~10% of weights left; level 0 is
the dense net), exported by `lottery export onnx` (sparse_storage auto) and timed by `lottery bench`, all through
pipelines.api. For each model and density: the ONNX file's bytes on disk with dense and with `auto`
(sparse-initializer) storage, ORT vs PyTorch parity on the whole test set (top-1 agreement, max abs diff), ORT and
PyTorch eager p50 latency at batch 1 and 64 measured in the same run (1 thread each), and test accuracy of both.
Writes benchmarks/results/export_onnx.json.
Run at the defaults (the committed result): python -m benchmarks.export_onnx
Quick check: python -m benchmarks.export_onnx --epochs 0.5 --conv-epochs 0.2 --iters 20 --results /tmp/r
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import Run, arguments

MODELS = (("lenet_300_100", 1.0), ("conv4", 0.25))
WARMUP = 20


def ticket_levels(model: str, width: float, epochs: float, threads: int, out: Path) -> list[Path]:
    from pipelines import api

    rep = api.run("imp", out=out, scope={"model": model, "width": width, "dataset": "mnist5k", "seed": 0,
                                         "threads": threads},
                  rounds=3, prune={"rate": 0.54}, train={"epochs": epochs}, controls={"controls": []})
    run = Path(rep["run_dir"]) / "seed-0"
    return [run / "level-0", run / "level-3"]


def measure(ticket: Path, iters: int) -> tuple[dict[str, Any], list[str]]:
    """Export one ticket and time it; the row of this benchmark and the exporter's notes."""
    from pipelines import api

    exp = api.run("export_onnx", input=ticket, sparse_storage="auto")
    bench = api.run("bench", input=api.artifact(exp, "onnx"), batch_sizes=(1, 64), threads=1, warmup=WARMUP,
                    iterations=iters)
    m, lat, ref = exp["metrics"], bench["details"]["latency"], bench["details"]["torch_latency"]
    row = {
        "density": m["density"], "file_bytes_dense_storage": m["file_bytes_dense_storage"],
        "file_bytes_auto": m["file_bytes"], "parity_agreement": m["parity_agreement"],
        "parity_max_abs_diff": m["parity_max_abs_diff"],
        "ort_p50_ms_b1": lat["1"]["latency_ms_p50"], "torch_p50_ms_b1": ref["1"]["latency_ms_p50"],
        "ort_p50_ms_b64": lat["64"]["latency_ms_p50"], "torch_p50_ms_b64": ref["64"]["latency_ms_p50"],
        "ort_test_acc": m["test_acc"], "torch_test_acc": m["torch_test_acc"],
        "file_ratio_auto_vs_dense": m["file_bytes"] / m["file_bytes_dense_storage"],
        "speedup_p50_b1": ref["1"]["latency_ms_p50"] / lat["1"]["latency_ms_p50"],
        "speedup_p50_b64": ref["64"]["latency_ms_p50"] / lat["64"]["latency_ms_p50"],
        "sparse_initializers": exp["details"]["sparse_initializers"],
    }
    return row, exp["notes"]


def sparse_vs_dense(results: list[dict[str, Any]]) -> str:
    """ORT p50 of each model's sparse ticket relative to its dense net, as measured."""
    parts = []
    for model, _ in MODELS:
        dense, sparse = (r for r in results if r["model"].startswith(model))
        parts.append(f"{model} at {100 * sparse['density']:.1f}% density: " + ", ".join(
            f"batch {b} {sparse[f'ort_p50_ms_b{b}'] / dense[f'ort_p50_ms_b{b}']:.2f}" for b in (1, 64)))
    return "ORT p50 of the sparse ticket / the dense net: " + "; ".join(parts) + "."


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=float, default=10, help="training epochs per level for LeNet-300-100")
    ap.add_argument("--conv-epochs", type=float, default=10, help="training epochs per level for Conv-4")
    ap.add_argument("--iters", type=int, default=200, help="timed calls per batch size")
    ap.add_argument("--threads", type=int, default=2, help="PyTorch threads for training (0: torch's default); "
                                                           "latency is always timed on 1 thread")
    ap.add_argument("--out", type=Path, default=None, help="run root (default: a fresh temp dir)")
    args = arguments(ap, argv)
    run = Run("export_onnx", ap, args)
    runs = args.out or Path(tempfile.mkdtemp(prefix="bench-export-onnx-"))
    results, notes = [], set()
    for model, width in MODELS:
        epochs = args.conv_epochs if model.startswith("conv") else args.epochs
        for tdir in ticket_levels(model, width, epochs, args.threads, runs):
            row, exp_notes = measure(tdir, args.iters)
            results.append({"model": f"{model} (width {width})", **row})
            notes.update(exp_notes)
            print({k: round(v, 5) if isinstance(v, float) else v for k, v in results[-1].items()}, flush=True)
    note = (f"ORT and PyTorch eager timed in the same run with 1 thread each (warm-up {WARMUP}, {args.iters} timed "
            f"calls per batch size; `lottery bench`). {sparse_vs_dense(results)} Exporter notes: "
            f"{' / '.join(sorted(notes))}")
    run.write({"results": results, "note": note,
               "epochs": {"lenet_300_100": args.epochs, "conv4": args.conv_epochs}})


if __name__ == "__main__":
    main()
