"""Benchmark: the quickstart's LCE `.tflite` with int8 float layers vs the dense `.onnx` (issue 13, edge size).

Builds the quickstart ticket with the Python API, as pipelines/presets/quickstart.toml does: LeNet-300-100 on
mnist5k, dense 10 epochs (= IMP level 0), IMP 3 rounds at rate 0.5 with the random control (the finder's
selected level), a 3-epoch finetune at lr 1e-4, binarize the inner layer with binary activations (5 epochs).
Then exports the binary ticket to LCE with float32 and with int8 float layers (export.lce, verified against
PyTorch on the 1,000 test digits) and the dense ticket to ONNX (dense storage). Floors: dense .onnx bytes /
int8 .tflite bytes >= 3.5, top-1 agreement of the int8 .tflite with PyTorch >= 0.99.
Writes benchmarks/results/lce_int8_quickstart.json.
Usage: PYTHONPATH=. python -m benchmarks.lce_int8_quickstart [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine, write

DATASET, SEED = "mnist5k", 0
FLOORS = {"quickstart_tflite_size_ratio": 3.5, "quickstart_tflite_agreement": 0.99}


def quickstart_tickets(out: Path) -> dict[str, Any]:
    """Dense, IMP, finetuned and binarized ticket dirs (with their test accuracies), as the quickstart builds them."""
    from compress.binarize.finetune import BinarizeHparams
    from compress.binarize.finetune import run as binarize

    from compress import data as datasets
    from compress import finders
    from compress.ticket import Ticket, resolve
    from compress.train import TrainHparams, evaluate, train

    hp = finders.make_hparams("imp", {"model.model": "lenet_300_100", "data.dataset": DATASET, "train.epochs": 10,
                                      "prune.rate": 0.5, "rounds": 3, "controls.controls": ["random"]})
    report = finders.find("imp", hp, [SEED], out / "imp")
    level = report["selected_level"]
    dense_dir = resolve(report["run_dir"], level=0, seed=SEED)
    imp = Ticket.load(resolve(report["run_dir"], level=level, seed=SEED))
    data = datasets.get(DATASET)
    model = imp.model("final")  # the finetune stage: continue training under the mask, low learning rate
    r = train(model, data, TrainHparams(epochs=3, lr=1e-4), mask=imp.mask, seed=SEED)
    tuned_dir = Ticket(imp.spec, imp.init, imp.mask, model.state_dict(), dict(imp.precision), meta={
        **imp.meta, "finder": "finetune", "metrics": r.metrics()}).save(out / "finetune")
    bhp = BinarizeHparams(act="binary", train=TrainHparams(optimizer="adam", lr=1e-3, epochs=5, batch_size=64,
                                                           schedule="cosine"), dataset=DATASET)
    rep = binarize(tuned_dir, bhp, out=out / "binarize", seed=SEED)
    dense = Ticket.load(dense_dir).model("final")
    return {"dense_dir": dense_dir, "binary_dir": Path(rep["ticket_dir"]), "imp_level": level,
            "density": imp.density, "dense_test_acc": evaluate(dense, data.x_test, data.y_test)[1],
            "imp_test_acc": imp.meta["metrics"]["test_acc"], "finetune_test_acc": r.test_acc,
            "binary_test_acc": rep["test_acc"]}


def _layers(report: dict[str, Any]) -> list[dict[str, Any]]:
    keep = ("layer", "kind", "weights", "op", "stored_bits", "bits_per_weight", "scales")
    return [{k: row[k] for k in keep if k in row} for row in report["layers"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=None, help="work directory (default: a fresh temp dir)")
    args = ap.parse_args()
    start = time.perf_counter()
    import torch

    torch.set_num_threads(1)  # the quickstart preset's `threads = 1`
    from export.lce import export_lce
    from export.onnx import export_onnx

    out = args.out or Path(tempfile.mkdtemp(prefix="bench-lce-int8-"))
    t = quickstart_tickets(out)
    onnx = export_onnx(t["dense_dir"], out / "onnx-dense", sparse_storage="dense", dataset=DATASET)
    lce = {fl: export_lce(t["binary_dir"], out / f"lce-{fl}", dataset=DATASET, float_layers=fl)
           for fl in ("float32", "int8")}
    f32, i8 = lce["float32"], lce["int8"]
    payload = {
        "quickstart_tflite_size_ratio": onnx["size_bytes"] / i8["size_bytes"],
        "quickstart_tflite_agreement": i8["agreement"],
        "onnx_dense_bytes": onnx["size_bytes"], "tflite_int8_bytes": i8["size_bytes"],
        "tflite_float32_bytes": f32["size_bytes"], "float32_tflite_size_ratio": onnx["size_bytes"] / f32["size_bytes"],
        "test_acc": {"dense_torch": t["dense_test_acc"], "dense_onnx": onnx["test_acc"], "imp": t["imp_test_acc"],
                     "finetune": t["finetune_test_acc"], "binary_torch": t["binary_test_acc"],
                     "tflite_float32": f32["lce_test_acc"], "tflite_int8": i8["lce_test_acc"]},
        "agreement": {"tflite_float32": f32["agreement"], "tflite_int8": i8["agreement"]},
        "max_abs_diff": {"tflite_float32": f32["max_abs_diff"], "tflite_int8": i8["max_abs_diff"]},
        "imp_level": t["imp_level"], "density": t["density"],
        "int8_layers": _layers(i8), "int8_ops": i8["ops"],
        "float_layer_bits": {"float32": f32["float_layer_bits"], "int8": i8["float_layer_bits"]},
        "binary_layer_bits": i8["binary_layer_bits"],
        "floors": FLOORS, "wall_s": round(time.perf_counter() - start, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()], "machine": machine(),
        "note": "int8: the layers LCE keeps in float store per-output-channel int8 weights read through DEQUANTIZE "
                "(export.lce_int8); filters under 1,024 weights (here the 100x10 output layer) stay float32. "
                "The .onnx is the dense LeNet-300-100 (IMP level 0) in dense storage.",
    }
    payload["floors_met"] = {k: payload[k] >= v for k, v in FLOORS.items()}
    write("lce_int8_quickstart", payload)
    print(f"dense .onnx {onnx['size_bytes']:,} B; .tflite float32 {f32['size_bytes']:,} B "
          f"({payload['float32_tflite_size_ratio']:.2f}x), int8 {i8['size_bytes']:,} B "
          f"({payload['quickstart_tflite_size_ratio']:.2f}x); agreement int8 {i8['agreement']:.4f}, "
          f"float32 {f32['agreement']:.4f}; floors met: {payload['floors_met']}")


if __name__ == "__main__":
    main()
