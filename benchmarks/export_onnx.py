"""Benchmark: ONNX export of LeNet-300-100 and Conv-4 (width 0.25) tickets on mnist5k, dense and ~10% dense.

For each model and density: ONNX file size with dense vs `auto` (sparse-initializer) storage, ORT vs
PyTorch top-1 agreement and max abs diff on the whole test set, latency p50 at batch 1 and 64 of ORT and
of PyTorch eager measured in the same run (1 thread each), and test accuracy through both.
Tickets come from a real IMP run (3 rounds at 54% per round: ~10% of weights left).
Writes benchmarks/results/export_onnx.json.  Usage: python benchmarks/export_onnx.py [--epochs 10 --conv-epochs 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress import finders  # noqa: E402
from compress.io import save_json  # noqa: E402
from compress.ticket import Ticket  # noqa: E402
from export.onnx import export_onnx  # noqa: E402
from pipelines.bench import bench  # noqa: E402

MODELS = (("lenet_300_100", 1.0), ("conv4", 0.25))


def ticket_levels(model: str, width: float, epochs: float, out: Path) -> list[Path]:
    hp = finders.make_hparams("imp", {"model.model": model, "model.width": width, "data.dataset": "mnist5k",
                                      "train.epochs": epochs, "rounds": 3, "prune.rate": 0.54,
                                      "controls.controls": []})
    run = Path(finders.find("imp", hp, [0], out)["run_dir"])
    return [run / "seed-0" / "level-0", run / "seed-0" / "level-3"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=float, default=10, help="training epochs per level for LeNet-300-100")
    ap.add_argument("--conv-epochs", type=float, default=2, help="training epochs per level for Conv-4 (slower)")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "export_onnx.json")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-export-onnx")
    args = ap.parse_args()
    start = time.perf_counter()
    results = []
    for model, width in MODELS:
        epochs = args.conv_epochs if model.startswith("conv") else args.epochs
        for tdir in ticket_levels(model, width, epochs, args.runs):
            dense = export_onnx(tdir, tdir / "onnx-dense", sparse_storage="dense")
            auto = export_onnx(tdir, tdir / "onnx-auto", sparse_storage="auto")
            b = bench(auto["artifact"], "mnist5k", (1, 64), threads=1, warmup=20, iters=args.iters)
            lat, ref = b["latency"]["batch"], b["torch"]["latency"]
            row = {
                "model": f"{model} (width {width})", "density": Ticket.load(tdir).density,
                "onnx_bytes_dense_storage": dense["size_bytes"], "onnx_bytes_auto": auto["size_bytes"],
                "agreement": auto["verification"]["agreement"], "max_abs_diff": auto["verification"]["max_abs_diff"],
                "ort_p50_ms_b1": lat["1"]["latency_ms_p50"], "torch_p50_ms_b1": ref["1"]["latency_ms_p50"],
                "ort_p50_ms_b64": lat["64"]["latency_ms_p50"], "torch_p50_ms_b64": ref["64"]["latency_ms_p50"],
                "ort_test_acc": b["test_acc"], "torch_test_acc": b["torch"]["test_acc"],
                "size_ratio_auto_vs_dense": auto["size_bytes"] / dense["size_bytes"],
                "speedup_p50_b1": ref["1"]["latency_ms_p50"] / lat["1"]["latency_ms_p50"],
                "speedup_p50_b64": ref["64"]["latency_ms_p50"] / lat["64"]["latency_ms_p50"],
            }
            results.append(row)
            print({k: round(v, 5) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    save_json(args.out, {
        "results": results,
        "note": ("measured on a 2-core x86_64 CPU machine (a load average above ~1 means other jobs shared it and "
                 "absolute latencies are noisy); ORT and PyTorch were timed in the same run with 1 thread each "
                 f"(warm-up 20, {args.iters} timed calls). Sparse storage shrinks the file only: ONNX Runtime "
                 "densifies sparse initializers at load, so the 10%-dense ticket is not faster than the dense one."),
        "load_average_1_5_15_at_end": [round(v, 2) for v in os.getloadavg()],
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "epochs": {"lenet_300_100": args.epochs, "conv4": args.conv_epochs},
        "wall_s": round(time.perf_counter() - start, 1),
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
