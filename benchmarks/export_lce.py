"""Benchmark: LCE export of binary tickets on mnist5k (conv4 at width 0.5: 32/64 channels, no packing waste).

Tickets: an MPT-1/1 ticket (`lottery find mpt --act binary`), a binarized IMP ticket and a dense binarized net
(`lottery binarize --act binary` of IMP's level 1 and level 0). For each: `.tflite` size vs the float32 `.onnx`
of the same network, stored bits of the binary layers vs their format's limit (1 bit dense, 2 bits ternary),
LCE-vs-PyTorch top-1 agreement and accuracy on the 1,000 test digits, and local interpreter latency (x86:
LCE reference kernels, not ARM numbers). Writes benchmarks/results/export_lce.json.
Usage: python benchmarks/export_lce.py [--out runs-bench-lce] [--epochs 4]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULT = ROOT / "benchmarks" / "results" / "export_lce.json"
WIDTH, DATASET = 0.5, "mnist5k"
FLOORS = {"agreement": 0.995, "acc_gap": 0.002, "bits_ratio": 1.1, "size_ratio_ternary": 12.0,
          "size_ratio_dense": 20.0}


def tickets(out: Path, epochs: float) -> dict[str, Path]:
    """Ticket directories: mpt-1/1, binarized-imp, dense-binary (found or re-used from `out`)."""
    from compress import finders
    from compress.binarize import finetune  # from the binarize / MPT issue (branch issue-4)
    from compress.train import TrainHparams

    common = {"model.model": "conv4", "model.width": WIDTH, "data.dataset": DATASET, "train.epochs": epochs,
              "train.batch_size": 64, "train.eval_every": 100}
    mpt = finders.find("mpt", finders.make_hparams("mpt", {**common, "act": "binary", "keep": 0.5, "baseline": False,
                                                          "scores.epochs": epochs, "scores.eval_every": 100}),
                       [0], out)
    imp = finders.find("imp", finders.make_hparams("imp", {**common, "rounds": 1, "controls.controls": []}), [0], out)
    seed = Path(imp["run_dir"]) / "seed-0"
    tune = TrainHparams(epochs=epochs, batch_size=64, lr=1e-3, schedule="cosine", eval_every=100)
    bhp = finetune.BinarizeHparams(act="binary", train=tune)
    return {"mpt-1/1": Path(mpt["run_dir"]) / "seed-0" / "level-1",
            "binarized-imp": Path(finetune.run(seed / "level-1", bhp)["ticket_dir"]),
            "dense-binary": Path(finetune.run(seed / "level-0", bhp)["ticket_dir"])}


def float_copy(model):
    """The same network with plain float32 Conv2d/Linear holding the effective weights (for the .onnx size)."""
    import torch
    from torch import nn

    from compress.binarize.layers import BINARY_TYPES

    model = copy.deepcopy(model).eval()
    for name, m in list(model.named_modules()):
        if isinstance(m, BINARY_TYPES):
            if isinstance(m, nn.Conv2d):
                new = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                                m.groups, m.bias is not None)
            else:
                new = nn.Linear(m.in_features, m.out_features, m.bias is not None)
            with torch.no_grad():
                new.weight.copy_(m.binary_weight())
                if m.bias is not None:
                    new.bias.copy_(m.bias)
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, new)
    return model


def onnx_bytes(model, input_shape: tuple[int, ...], path: Path) -> int:
    import torch

    torch.onnx.export(float_copy(model), torch.zeros(1, *input_shape), str(path), dynamo=False)
    return path.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs-bench-lce")
    ap.add_argument("--epochs", type=float, default=4)
    a = ap.parse_args()
    start = time.perf_counter()
    import torch

    torch.set_num_threads(2)
    from compress import data as datasets
    from compress.ticket import Ticket
    from deploy_targets.arm_lce import LceTarget
    from export.lce import finish_job, prepare_job, run_worker
    from export.lce_graph import describe

    out = Path(a.out)
    dirs = tickets(out, a.epochs)
    x, y = datasets.get(DATASET).split("test")
    jobs, nets = {}, {}
    for key, d in dirs.items():
        t = Ticket.load(d)
        nets[key] = (t.model("final").eval(), tuple(t.spec.input_shape))
        graph = describe(nets[key][0], nets[key][1])
        job = out / "lce" / key.replace("/", "_")
        shutil.rmtree(job, ignore_errors=True)
        jobs[key] = (prepare_job(job, graph, x.numpy()), graph)
    run_worker([j for j, _ in jobs.values()])  # one TensorFlow process for all three conversions
    rows = []
    for key, (job, graph) in jobs.items():
        model, shape = nets[key]
        r = finish_job(job, graph, model, x, y, min_agreement=0.0)  # record, then judge against the floors
        lat = LceTarget(threads=1, warmup=10, iters=200).run(job / "model.tflite")
        onnx = onnx_bytes(model, shape, job / "model_fp32.onnx")
        row = {"ticket": key, "ternary": r["ternary"], "tflite_bytes": r["tflite_bytes"], "onnx_fp32_bytes": onnx,
               "binary_layer_bits": r["binary_layer_bits"], "binary_layer_bits_limit": r["binary_layer_bits_limit"],
               "agreement": r["agreement"], "max_abs_diff": r["max_abs_diff"], "lce_test_acc": r["lce_test_acc"],
               "torch_test_acc": r["torch_test_acc"],
               "local_p50_ms": lat["latency_ms_p50"], "local_p90_ms": lat["latency_ms_p90"],
               "size_ratio": onnx / r["tflite_bytes"], "ops": r["ops"], "warnings": r["warnings"],
               "float_binary_layers": r["float_binary_layers"], "ticket_dir": str(dirs[key]),
               "layers": [{k: v for k, v in row.items() if k in ("layer", "kind", "weights", "bits_per_weight")}
                          for row in r["layers"]]}
        need = FLOORS["size_ratio_ternary" if r["ternary"] else "size_ratio_dense"]
        row["floors_met"] = {
            "agreement": row["agreement"] >= FLOORS["agreement"],
            "accuracy": abs(row["lce_test_acc"] - row["torch_test_acc"]) <= FLOORS["acc_gap"] + 1e-9,
            "bits": row["binary_layer_bits"] <= FLOORS["bits_ratio"] * row["binary_layer_bits_limit"],
            "size": row["size_ratio"] >= need}
        rows.append(row)
        print(f"{key:14s} ternary={row['ternary']!s:5s} tflite={row['tflite_bytes']:>8,} onnx={onnx:>9,} "
              f"({row['size_ratio']:.1f}x) bits={row['binary_layer_bits']:,}/{row['binary_layer_bits_limit']:,} "
              f"agree={100 * row['agreement']:.2f}% acc lce/torch={100 * row['lce_test_acc']:.2f}/"
              f"{100 * row['torch_test_acc']:.2f} p50={row['local_p50_ms']:.3f} ms floors={row['floors_met']}")
    result = {"results": rows, "floors": FLOORS, "model": f"conv4 width {WIDTH}", "dataset": DATASET,
              "epochs": a.epochs, "wall_s": round(time.perf_counter() - start, 1),
              "note": f"2-core x86 machine, load average {os.getloadavg()[0]:.1f} at the end (above ~1: other jobs); "
                      "latency is LCE's reference kernels "
                      "(correct, not optimized) and says nothing about ARM latency, which must be measured on "
                      "the device (`lottery deploy edge --host`)."}
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
