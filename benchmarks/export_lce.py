"""Benchmark: LCE export of binary tickets on mnist5k (conv4 at width 0.5: 32/64 channels, no packing waste).

Tickets (through pipelines.api): an MPT-1/1 ticket (`lottery find mpt --act binary`), a binarized IMP ticket and a
dense binarized net (`lottery binarize --act binary` of IMP's level 1 and level 0). Each is exported by `lottery
export lce` and timed by `lottery bench` (1 thread). For each: `.tflite` bytes vs the float32 `.onnx` of the same
network (the binary layers' effective weights in plain float layers), stored bits of the binary layers vs their
format's limit (1 bit dense, 2 bits ternary), LCE-vs-PyTorch parity (top-1 agreement, max abs diff) and accuracy
on the 1,000 test digits, and local interpreter latency (x86: LCE reference kernels, not ARM numbers).
Writes benchmarks/results/export_lce.json.
Run at the defaults (the committed result): python -m benchmarks.export_lce
Quick check: python -m benchmarks.export_lce --epochs 0.2 --iters 20 --results /tmp/r
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import Run, arguments

WIDTH, DATASET = 0.5, "mnist5k"
WARMUP = 10
FLOORS = {"parity_agreement": 0.995, "acc_gap": 0.002, "bits_ratio": 1.1, "file_ratio_ternary": 12.0,
          "file_ratio_dense": 20.0}


def tickets(out: Path, epochs: float, threads: int) -> dict[str, Path]:
    """Ticket directories: mpt-1/1, binarized-imp, dense-binary."""
    from pipelines import api

    scope = {"model": "conv4", "width": WIDTH, "dataset": DATASET, "seed": 0, "threads": threads}
    mpt = api.run("mpt", out=out, scope=scope, act="binary", keep=0.5, baseline=False,
                  scores={"epochs": epochs, "eval_every": 100})
    imp = api.run("imp", out=out, scope=scope, rounds=1, controls={"controls": []},
                  train={"epochs": epochs, "batch_size": 64, "eval_every": 100})
    seed = Path(imp["run_dir"]) / "seed-0"
    tune = {"epochs": epochs, "batch_size": 64, "lr": 1e-3, "schedule": "cosine", "eval_every": 100}
    binarized = {level: api.run("binarize", input=seed / f"level-{level}", scope={"threads": threads},
                                act="binary", train=tune) for level in (1, 0)}
    return {"mpt-1/1": Path(mpt["run_dir"]) / "seed-0" / "level-1",
            "binarized-imp": api.artifact(binarized[1], "binary_ticket"),
            "dense-binary": api.artifact(binarized[0], "binary_ticket")}


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


def onnx_bytes(ticket_dir: Path, path: Path) -> int:
    import torch

    from compress.ticket import Ticket

    t = Ticket.load(ticket_dir)
    torch.onnx.export(float_copy(t.model("final")), torch.zeros(1, *t.spec.input_shape), str(path), dynamo=False)
    return path.stat().st_size


def measure(key: str, ticket: Path, root: Path, iters: int) -> dict[str, Any]:
    from pipelines import api

    exp = api.run("export_lce", input=ticket)
    tflite = api.artifact(exp, "tflite")
    bench = api.run("bench", input=tflite, threads=1, warmup=WARMUP, iterations=iters)
    m, d, lat = exp["metrics"], exp["details"], bench["details"]["latency"]["1"]
    onnx = onnx_bytes(ticket, tflite.parent / "model_fp32.onnx")
    row = {"ticket": key, "ternary": d["ternary"], "tflite_bytes": m["file_bytes"], "onnx_fp32_bytes": onnx,
           "binary_layer_bits": d["binary_layer_bits"], "binary_layer_bits_limit": d["binary_layer_bits_limit"],
           "parity_agreement": m["parity_agreement"], "parity_max_abs_diff": m["parity_max_abs_diff"],
           "lce_test_acc": m["test_acc"], "torch_test_acc": m["torch_test_acc"],
           "local_p50_ms": lat["latency_ms_p50"], "local_p90_ms": lat["latency_ms_p90"],
           "file_ratio": onnx / m["file_bytes"], "ops": d["ops"], "warnings": d["warnings"],
           "float_binary_layers": d["float_binary_layers"], "ticket_dir": str(ticket.relative_to(root)),
           "layers": [{k: v for k, v in r.items() if k in ("layer", "kind", "weights", "bits_per_weight")}
                      for r in d["layers"]],
           "kernels": bench["notes"][-1]}
    need = FLOORS["file_ratio_ternary" if row["ternary"] else "file_ratio_dense"]
    row["floors_met"] = {
        "parity_agreement": row["parity_agreement"] >= FLOORS["parity_agreement"],
        "accuracy": abs(row["lce_test_acc"] - row["torch_test_acc"]) <= FLOORS["acc_gap"] + 1e-9,
        "bits": row["binary_layer_bits"] <= FLOORS["bits_ratio"] * row["binary_layer_bits_limit"],
        "file_ratio": row["file_ratio"] >= need}
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=float, default=4,
                    help="epochs of the MPT scores, IMP levels and the binarize finetune")
    ap.add_argument("--iters", type=int, default=200, help="timed interpreter calls per ticket")
    ap.add_argument("--threads", type=int, default=2, help="PyTorch threads for training")
    ap.add_argument("--out", type=Path, default=None, help="run root (default: a fresh temp dir)")
    a = arguments(ap, argv)
    run = Run("export_lce", ap, a)
    out = a.out or Path(tempfile.mkdtemp(prefix="bench-lce-"))
    rows = []
    for key, d in tickets(out, a.epochs, a.threads).items():
        row = measure(key, d, out.resolve(), a.iters)
        rows.append(row)
        print(f"{key:14s} ternary={row['ternary']!s:5s} tflite={row['tflite_bytes']:>8,} "
              f"onnx={row['onnx_fp32_bytes']:>9,} ({row['file_ratio']:.1f}x) bits={row['binary_layer_bits']:,}/"
              f"{row['binary_layer_bits_limit']:,} agree={100 * row['parity_agreement']:.2f}% acc lce/torch="
              f"{100 * row['lce_test_acc']:.2f}/{100 * row['torch_test_acc']:.2f} p50={row['local_p50_ms']:.3f} ms "
              f"floors={row['floors_met']}", flush=True)
    kernels = sorted({r["kernels"] for r in rows})
    note = (f"latency: {' / '.join(kernels)}, 1 thread, warm-up {WARMUP}, {a.iters} timed calls (`lottery bench`); "
            "ARM latency must be measured on the device (`lottery deploy edge --host`).")
    run.write({"results": rows, "floors": FLOORS, "model": f"conv4 width {WIDTH}", "dataset": DATASET,
               "epochs": a.epochs, "note": note})


if __name__ == "__main__":
    main()
