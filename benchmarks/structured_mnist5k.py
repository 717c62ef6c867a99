"""Benchmark: structured tickets that run faster. GFS vs L1-norm, random units and small-dense on mnist5k.

LeNet-300-100 (width 1) and Conv-4 (width 0.5 of its 64-channel base, to fit the CPU budget), keeping 50% and
25% of the hidden units/channels, 3 seeds. Per seed the dense net is trained once; greedy forward selection
(Ye et al., ICML 2020), L1-norm filter pruning (Li et al., ICLR 2017) and random units start from it and get
the same finetune; small-dense is the same small architecture trained from scratch. Every method trains the
small network for as many epochs in all: GFS's final finetune has the dense training's epochs, plus its 1-epoch
finetune after each layer; L1, random and small-dense get that total. Test accuracy, parameters, FLOPs
(torch.utils.flop_counter), and ONNX Runtime p50 latency at batch 1 and 64 (1 thread) of seed 0's networks
against the dense model's, timed alternately in the same run (export.onnx.export_onnx, deploy_targets).
Writes benchmarks/results/structured_mnist5k.json and .png.
Run: python -m benchmarks.structured_mnist5k [--seeds 3] [--conv-width 0.5] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine  # noqa: E402
from benchmarks.structured_report import floors, plot, verdicts  # noqa: E402
from compress import data as datasets  # noqa: E402
from compress.io import save_json  # noqa: E402
from compress.mask import Mask  # noqa: E402
from compress.models import ModelSpec, build  # noqa: E402
from compress.structured.flops import flops  # noqa: E402
from compress.structured.gfs import gfs  # noqa: E402
from compress.structured.l1 import l1  # noqa: E402
from compress.structured.random_units import random_units  # noqa: E402
from compress.structured.settings import GfsSettings, OneShotSettings, SmallDenseSettings  # noqa: E402
from compress.structured.small_dense import small_dense  # noqa: E402
from compress.structured.units import unit_groups  # noqa: E402
from compress.ticket import Ticket  # noqa: E402
from compress.train import TrainHparams, train  # noqa: E402
from deploy_targets.onnxruntime import OnnxRuntimeTarget  # noqa: E402
from export.onnx import export_onnx  # noqa: E402

KEEPS = (0.5, 0.25)
LAYER_EPOCHS = 1.0  # GFS's short finetune after each layer
METHODS = ("gfs", "l1", "random", "small_dense")
LR = {"lenet_300_100": 1.2e-3, "conv4": 3e-4}  # the LTH paper's Adam rates (lottery's defaults for these nets)
def run_method(method: str, dense: torch.nn.Module, spec: ModelSpec, data, keep: float, hp: TrainHparams, seed: int,
               **gfs_options):
    """GFS finetunes 1 epoch after each of its layers and `hp` at the end; the others train as many epochs in all.
    `gfs_options`: other GfsSettings of the GFS run."""
    layers = len(unit_groups(dense, data.input_shape, include_coupled=False))
    same = hp.replace(epochs=hp.epochs + layers * LAYER_EPOCHS)
    if method == "gfs":
        return gfs(dense, spec, data, GfsSettings(keep=keep, layer_train=hp.replace(epochs=LAYER_EPOCHS), finetune=hp,
                                                  **gfs_options), seed)
    if method in ("l1", "random"):
        fn = l1 if method == "l1" else random_units
        return fn(dense, spec, data, OneShotSettings(keep=keep, finetune=same), seed)
    return small_dense(spec, data, SmallDenseSettings(keep=keep, train=same), seed)


def save_ticket(spec: ModelSpec, model: torch.nn.Module, path: Path, meta: dict) -> Path:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    Ticket(spec, state, Mask.ones_like(model), state, meta={"dataset": "mnist5k", **meta}).save(path)
    return path


def latency_ratios(dense_onnx: str, onnx: str, shape: tuple[int, ...], iters: int, rounds: int) -> dict[str, float]:
    """ORT p50 (1 thread) of the shrunk and the dense model, alternating in `rounds` rounds so both see the same
    load; the ratio is the median of the per-round ratios, the p50s the medians of the rounds."""
    target = OnnxRuntimeTarget(threads=1, warmup=10, iters=iters)
    out: dict[str, float] = {}
    for b in (1, 64):
        pairs = [[target.benchmark(Path(a), shape, (b,))["batch"][str(b)]["latency_ms_p50"] for a in (onnx, dense_onnx)]
                 for _ in range(rounds)]
        out.update({f"ort_b{b}_p50_ms": statistics.median(s for s, _ in pairs),
                    f"dense_ort_b{b}_p50_ms": statistics.median(d for _, d in pairs),
                    f"ort_b{b}_latency_ratio": statistics.median(s / d for s, d in pairs)})
    return out


def quickstart_int8() -> dict:
    """The quickstart .tflite with int8 float layers, as measured by its own benchmark (lce_int8_quickstart.py
    runs the quickstart pipeline and both LCE exports; not repeated here)."""
    path = ROOT / "benchmarks" / "results" / "lce_int8_quickstart.json"
    if not path.is_file():
        return {"source": "benchmarks/results/lce_int8_quickstart.json is missing: run python -m "
                          "benchmarks.lce_int8_quickstart first"}
    import json

    r = json.loads(path.read_text())
    return {**r, "source": f"benchmarks/results/lce_int8_quickstart.json (its script's run of {r['machine']['date']})"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--conv-width", type=float, default=0.5)
    ap.add_argument("--lenet-epochs", type=float, default=20)
    ap.add_argument("--conv-epochs", type=float, default=8)
    ap.add_argument("--iters", type=int, default=50, help="timed ORT calls per model per round")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds of shrunk and dense ORT timing")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-structured")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "structured_mnist5k.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data = datasets.get("mnist5k")
    models = (("lenet_300_100", 1.0, args.lenet_epochs), ("conv4", args.conv_width, args.conv_epochs))
    rows, dense_info, dense_wall, logs = [], {}, {}, {}
    for name, width, epochs in models:
        spec = ModelSpec(name, data.input_shape, data.num_classes, width)
        hp = TrainHparams(epochs=epochs, lr=LR[name], batch_size=60, eval_every=100)
        acc: dict[tuple[str, float], list[float]] = {}
        wall: dict[tuple[str, float], list[float]] = {}
        d_acc, d_wall, nets = [], [], {}
        for seed in range(args.seeds):
            dense = build(spec, seed=seed)
            r = train(dense, data, hp, seed=seed)
            d_acc.append(r.test_acc)
            d_wall.append(r.wall_s)
            print(f"{name} seed {seed} dense {r.test_acc:.4f} ({r.wall_s:.1f} s), load {os.getloadavg()[0]:.1f}",
                  flush=True)
            if seed == 0:
                nets["dense"] = (spec, dense)
            for keep in KEEPS:
                for method in METHODS:
                    res = run_method(method, dense, spec, data, keep, hp, seed)
                    acc.setdefault((method, keep), []).append(res.metrics["test_acc"])
                    wall.setdefault((method, keep), []).append(res.metrics["wall_s"])
                    if seed == 0:
                        nets[(method, keep)] = (res.spec, res.model)
                    if method == "gfs":
                        logs.setdefault(f"{name} keep {keep}", []).append(
                            [{k: v for k, v in e.items() if k != "step_losses"} for e in res.layers])
                    print(f"  keep {keep} {method:11s} {res.metrics['test_acc']:.4f} ({res.metrics['wall_s']:.1f} s)",
                          flush=True)
        dense_wall[name] = statistics.fmean(d_wall)
        tdir = args.runs / name
        dspec, dnet = nets["dense"]
        dense_onnx = export_onnx(save_ticket(dspec, dnet, tdir / "dense", {"method": "dense"}), tdir / "dense-onnx",
                                 sparse_storage="dense", threads=1)["artifact"]
        dense_flops = flops(dnet, data.input_shape).total
        dense_info[name] = {"width": width, "epochs": epochs, "test_acc_mean": statistics.fmean(d_acc),
                            "test_acc_per_seed": d_acc, "params": sum(p.numel() for p in dnet.parameters()),
                            "flops": dense_flops}
        for (method, keep), (sspec, snet) in ((k, v) for k, v in nets.items() if k != "dense"):
            key = f"{method}-{keep}"
            rep = export_onnx(save_ticket(sspec, snet, tdir / key, {"method": method}), tdir / f"{key}-onnx",
                              sparse_storage="dense", threads=1)
            lat = latency_ratios(dense_onnx, rep["artifact"], data.input_shape, args.iters, args.rounds)
            rows.append({"model": name, "method": method, "keep": keep,
                         "test_acc_mean": statistics.fmean(acc[(method, keep)]),
                         "test_acc_per_seed": acc[(method, keep)], "params": sum(p.numel() for p in snet.parameters()),
                         "flops_ratio": flops(snet, data.input_shape).total / dense_flops,
                         "ort_b1_latency_ratio": lat["ort_b1_latency_ratio"],
                         "ort_b64_latency_ratio": lat["ort_b64_latency_ratio"],
                         "wall_s": statistics.fmean(wall[(method, keep)]), "latency_ms": lat,
                         "onnx_agreement": rep["verification"]["agreement"], "onnx_bytes": rep["file_bytes"]})
            print({k: v for k, v in rows[-1].items() if k not in ("latency_ms", "test_acc_per_seed")}, flush=True)
    int8 = quickstart_int8()
    payload = {
        "results": rows, "dense_train_wall_s": dense_wall,
        "quickstart_tflite_size_ratio": int8.get("quickstart_tflite_file_ratio"),
        "quickstart_tflite_agreement": int8.get("quickstart_tflite_parity_agreement"),
        "quickstart_tflite_source": int8.get("source"), "wall_s": round(time.perf_counter() - t0, 1),
        "machine": {**machine(), "cpus": os.cpu_count(), "load_average_1_5_15_at_end": list(os.getloadavg())},
        "dense": dense_info, "verdicts": verdicts(rows), "floors": floors(rows, dense_wall), "gfs_layers": logs,
        "settings": {"seeds": args.seeds, "keeps": list(KEEPS), "lr": LR, "batch_size": 60, "optimizer": "adam",
                     "finetune_epochs": "GFS: the dense epochs at the end + 1 per layer; the others: as many in all",
                     "gfs_layer_train_epochs": LAYER_EPOCHS,
                     "gfs": GfsSettings().to_dict(), "ort_threads": 1, "ort_iters": args.iters,
                     "ort_rounds": args.rounds},
        "notes": [
                  "Latency ratios: shrunk p50 / dense p50 (1 ORT thread) timed alternately in --rounds rounds of "
                  "--iters calls in this run, median of the per-round ratios; a load average above ~1 means other "
                  "jobs shared the 2 cores, and ratios measured then are indicative only.",
                  "Conv-4 runs at width 0.5 of its 64-channel base so 3 seeds of all methods fit the CPU budget."],
    }
    save_json(args.out, payload)
    plot(rows, dense_info, args.out.with_suffix(".png"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
