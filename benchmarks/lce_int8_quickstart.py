"""Benchmark: the quickstart's LCE `.tflite` with int8 float layers vs the dense `.onnx` (issue 13, edge size).

Runs the quickstart preset itself (pipelines.api.pipeline: LeNet-300-100 on mnist5k, dense 10 epochs = IMP level 0,
IMP 3 rounds at rate 0.5 with the random control, finetune, binarize with binary activations, `export_lce` with
float_layers int8, benches). Then exports the same binary ticket with float32 float layers (`lottery export lce`)
and the dense baseline to ONNX in dense storage (`lottery export onnx`), both verified against PyTorch on the
1,000 test digits. Floors: dense .onnx bytes / int8 .tflite bytes >= 3.5, top-1 agreement of the int8 .tflite
with PyTorch >= 0.99.
Writes benchmarks/results/lce_int8_quickstart.json.
Run at the defaults (the committed result): python -m benchmarks.lce_int8_quickstart
Quick check (shorter training; numbers meaningless): python -m benchmarks.lce_int8_quickstart --quick --results /tmp/r
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import Run, arguments
from benchmarks.pipeline_quickstart import QUICK

FLOORS = {"quickstart_tflite_file_ratio": 3.5, "quickstart_tflite_parity_agreement": 0.99}
LAYER_KEYS = ("layer", "kind", "weights", "op", "stored_bits", "bits_per_weight", "scales", "note")


def quickstart(out: Path, quick: bool) -> dict[str, Any]:
    """The quickstart pipeline's report."""
    from pipelines import api

    return api.pipeline("quickstart", out=out, sets=list(QUICK) if quick else None, keep_going=quick)


def layers_note(layers: list[dict[str, Any]]) -> str:
    """Which float layers went int8 and which stayed float32, from the exporter's layer table."""
    floats = [r for r in layers if r["kind"] == "float"]
    parts = [f"layer {r['layer']} ({r['weights']:,} weights): {r.get('note', r['op'])}" for r in floats]
    return "Float layers of the int8 .tflite: " + "; ".join(parts) + "."


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the quickstart with far less training (a smoke run)")
    ap.add_argument("--out", type=Path, default=None, help="work directory (default: a fresh temp dir)")
    args = arguments(ap, argv)
    run = Run("lce_int8_quickstart", ap, args)
    from pipelines import api

    out = args.out or Path(tempfile.mkdtemp(prefix="bench-lce-int8-"))
    rep = quickstart(out, args.quick)
    stages, root = {s["name"]: s for s in rep["stages"]}, Path(rep["run_dir"])

    def path(stage: str, kind: str) -> Path:
        return root / stages[stage]["artifacts"][kind]

    i8, i8d = stages["export_lce"]["metrics"], stages["export_lce"]["details"]
    f32 = api.run("export_lce", input=path("binarize", "binary_ticket"), out=out / "lce-float32",
                  float_layers="float32", scope={"threads": 1})
    onnx = api.run("export_onnx", input=path("dense", "model"), out=out / "onnx-dense", sparse_storage="dense",
                   scope={"threads": 1})
    fm, om = f32["metrics"], onnx["metrics"]
    gate = next((g for g in stages["export_lce"]["gates"] if g["gate"] == "min_file_ratio"), None)
    payload = {
        "quickstart_tflite_file_ratio": om["file_bytes"] / i8["file_bytes"],
        "quickstart_tflite_parity_agreement": i8["parity_agreement"],
        "onnx_dense_bytes": om["file_bytes"], "tflite_int8_bytes": i8["file_bytes"],
        "tflite_float32_bytes": fm["file_bytes"], "float32_tflite_file_ratio": om["file_bytes"] / fm["file_bytes"],
        "quickstart_gate_min_file_ratio": gate,
        "test_acc": {"dense_torch": stages["dense"]["metrics"]["test_acc"], "dense_onnx": om["test_acc"],
                     "imp": stages["imp"]["metrics"]["test_acc"], "finetune": stages["finetune"]["metrics"]["test_acc"],
                     "binary_torch": stages["binarize"]["metrics"]["test_acc"], "tflite_float32": fm["test_acc"],
                     "tflite_int8": i8["test_acc"]},
        "parity_agreement": {"tflite_float32": fm["parity_agreement"], "tflite_int8": i8["parity_agreement"]},
        "parity_max_abs_diff": {"tflite_float32": fm["parity_max_abs_diff"], "tflite_int8": i8["parity_max_abs_diff"]},
        "imp_level": stages["imp"]["metrics"]["level"], "density": stages["imp"]["metrics"]["density"],
        "int8_layers": [{k: r[k] for k in LAYER_KEYS if k in r} for r in i8d["layers"]], "int8_ops": i8d["ops"],
        "float_layer_bits": {"float32": f32["details"]["float_layer_bits"], "int8": i8d["float_layer_bits"]},
        "binary_layer_bits": i8d["binary_layer_bits"], "pipeline_status": rep["status"],
        "floors": FLOORS,
        "note": f"{layers_note(i8d['layers'])} The .onnx is the quickstart's dense baseline (stage "
                f"'{stages['dense']['name']}') exported in dense storage.",
    }
    payload["floors_met"] = {k: payload[k] >= v for k, v in FLOORS.items()}
    run.write(payload)
    print(f"dense .onnx {om['file_bytes']:,} B; .tflite float32 {fm['file_bytes']:,} B "
          f"({payload['float32_tflite_file_ratio']:.2f}x), int8 {i8['file_bytes']:,} B "
          f"({payload['quickstart_tflite_file_ratio']:.2f}x); parity agreement int8 {i8['parity_agreement']:.4f}, "
          f"float32 {fm['parity_agreement']:.4f}; floors met: {payload['floors_met']}")


if __name__ == "__main__":
    main()
