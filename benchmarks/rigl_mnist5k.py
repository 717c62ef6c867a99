"""Dynamic sparse training on mnist5k: RigL vs SET vs static sparse (Evci et al., ICML 2020; Sundar &
Dwaraknath's reproducibility study, 2021), with IMP for reference.

LeNet-300-100, sparsities 0.9 / 0.95 / 0.98, 3 seeds, the same epochs for every method: RigL-ERK,
RigL-uniform, SET-ERK, static-ERK, and RigL-ERK with twice the epochs (`rigl_2x`). Settings are the
defaults of compress.dst.settings.DstHparams (RigL's MNIST recipe sized for this CPU) unless overridden
by flags. Training FLOPs are relative to dense training for the 1x epochs (so rigl_2x is about twice
RigL's), counting the dense gradient RigL computes at each mask update. The IMP reference is read from
benchmarks/results/imp_lenet_mnist5k.json (its own protocol: Adam, 20 epochs, 2 seeds), at the levels
nearest each density. Jobs run in `--workers` processes of `--threads` threads each.
Writes benchmarks/results/rigl_mnist5k.json and rigl_mnist5k.png.
Usage: python -m benchmarks.rigl_mnist5k [--seeds 3] [--workers 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, machine, write
from compress.dst.settings import DstHparams

SPARSITIES = (0.9, 0.95, 0.98)
VARIANTS = (("rigl_2x", "rigl", "erk", 2), ("rigl", "rigl", "erk", 1), ("rigl", "rigl", "uniform", 1),
            ("set", "set", "erk", 1), ("static", "static", "erk", 1))  # (row, method, distribution, epoch factor)


def _job(args: dict[str, Any]) -> dict[str, Any]:
    import torch

    from compress import data as datasets
    from compress.dst import run
    from compress.models import ModelSpec

    torch.set_num_threads(args["threads"])
    ds = datasets.get("mnist5k")
    spec = ModelSpec("lenet_300_100", ds.input_shape, ds.num_classes)
    base = DstHparams.from_dict(args["hp"])
    hp = base.replace(method=args["method"], distribution=args["distribution"], sparsity=args["sparsity"],
                      train=base.train.replace(epochs=base.train.epochs * args["factor"]))
    cpu = time.process_time()
    res = run(spec, ds, hp, seed=args["seed"], dense_iterations=base.train.total_iterations(len(ds.y_train)))
    cpu = time.process_time() - cpu
    m, f = res.ticket.meta["metrics"], res.history["flops"]
    return {**{k: args[k] for k in ("row", "distribution", "sparsity", "seed")}, "test_acc": m["test_acc"],
            "val_acc": m["val_acc"], "train_wall_s": m["wall_s"], "cpu_s": cpu, "density": res.ticket.density,
            "train_flops_ratio": f["train_flops_ratio"], "inference_flops_ratio": f["inference_flops_ratio"],
            "iterations": m["iterations"], "mask_updates": len(res.history["updates"]),
            "layer_density": {n: v["density"] for n, v in f["per_layer"].items()},
            "mask_change": res.history["mask_change"]}


def _imp_reference(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    levels = json.loads(path.read_text())["levels"][1:]
    out = []
    for s in SPARSITIES:
        near = min(levels, key=lambda r: abs(r["density"] - (1 - s)))
        out.append({"for_sparsity": s, "level": near["level"], "density": near["density"],
                    "test_acc_mean": near["ticket_test_acc"]})
    return out


def _plot(results: list[dict], imp: list[dict], curves: dict[float, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5))
    for row, _, dist, _ in VARIANTS:
        pts = sorted((r for r in results if r["method"] == row and r["distribution"] == dist),
                     key=lambda r: r["sparsity"])
        ax.errorbar([100 * r["sparsity"] for r in pts], [100 * r["test_acc_mean"] for r in pts],
                    yerr=[100 * r["test_acc_std"] for r in pts], marker="o", ms=4, capsize=3,
                    label=f"{row}-{dist}")
    levels = {r["level"]: r for r in imp}.values()
    if levels:
        ax.plot([100 * (1 - r["density"]) for r in levels], [100 * r["test_acc_mean"] for r in levels], "k*", ms=9,
                label="IMP at its nearest levels (Adam, 20 epochs)")
    ax.set_xlabel("sparsity (%)")
    ax.set_ylabel("test accuracy (%), mean ± std over seeds")
    ax.set_title("LeNet-300-100 on mnist5k")
    ax.legend(fontsize=8)
    for s, c in sorted(curves.items()):
        bx.plot(c["iterations"], c["fraction_of_final_present"], marker=".", label=f"RigL-ERK, sparsity {s}")
    bx.set_xlabel("iteration")
    bx.set_ylabel("fraction of the final mask present")
    bx.set_title("mask change (seed 0)")
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1, help="parallel runs (2 finishes sooner; 1 times fairer)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a DstHparams setting, e.g. delta_t=50 or train.epochs=40")
    args = ap.parse_args()
    hp = DstHparams()
    for item in args.set:
        key, _, value = item.partition("=")
        hp = hp.with_setting(key, value)
    # Interleaved (every method in each stretch of the run) so load drifts hit all methods alike.
    jobs = [{"row": row, "method": method, "distribution": dist, "factor": factor, "sparsity": s, "seed": seed,
             "hp": hp.to_dict(), "threads": args.threads}
            for s in SPARSITIES for seed in range(args.seeds) for row, method, dist, factor in VARIANTS]
    load_before = os.getloadavg()
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as ex:
        done = list(ex.map(_job, jobs))
    wall = time.perf_counter() - start

    results, curves = [], {}
    for row, _, dist, _ in VARIANTS:
        for s in SPARSITIES:
            runs = sorted((d for d in done if d["row"] == row and d["distribution"] == dist and d["sparsity"] == s),
                          key=lambda d: d["seed"])
            accs = [d["test_acc"] for d in runs]
            results.append({
                "method": row, "distribution": dist, "sparsity": s, "test_acc_mean": statistics.mean(accs),
                "test_acc_per_seed": accs, "test_acc_std": statistics.pstdev(accs),
                "val_acc_mean": statistics.mean(d["val_acc"] for d in runs),
                "train_flops_ratio": statistics.mean(d["train_flops_ratio"] for d in runs),
                "inference_flops_ratio": statistics.mean(d["inference_flops_ratio"] for d in runs),
                "density": runs[0]["density"], "layer_density": runs[0]["layer_density"],
                "iterations": runs[0]["iterations"], "mask_updates": runs[0]["mask_updates"],
                "wall_s_mean": statistics.mean(d["train_wall_s"] for d in runs),
                "cpu_s_mean": statistics.mean(d["cpu_s"] for d in runs)})
            if row == "rigl" and dist == "erk":
                curves[s] = runs[0]["mask_change"]
    imp = _imp_reference(RESULTS / "imp_lenet_mnist5k.json")
    payload = {"results": results, "imp": imp, "wall_s": round(wall, 1), "machine": machine(),
               "floors": _floors(results, imp, wall), "settings": hp.to_dict(), "seeds": args.seeds,
               "workers": args.workers, "threads_per_worker": args.threads,
               "load_avg_before": [round(x, 2) for x in load_before],
               "load_avg_after": [round(x, 2) for x in os.getloadavg()], "mask_change_rigl_erk_seed0": curves,
               "notes": ["imp: read from benchmarks/results/imp_lenet_mnist5k.json (written by "
                         "benchmarks/imp_lenet_mnist5k.py: Adam 1.2e-3, batch 60, 20 epochs, 2 seeds, layer-wise "
                         "20%/round, output 10%), the level nearest each density; it stops at 12 rounds (density "
                         "0.0695), so 0.95 and 0.98 both point at that level.",
                         "train_flops_ratio: relative to dense training for the 1x epochs; a step costs 3x the "
                         "forward FLOPs, a RigL update step 2 f_S + f_D (dense weight gradient).",
                         "wall_s_mean: training wall time per run, runs sharing the machine in parallel workers; "
                         "cpu_s_mean: CPU seconds of the run's worker (one thread), steadier under load."]}
    write("rigl_mnist5k", payload)
    _plot(results, imp, curves, RESULTS / "rigl_mnist5k.png")
    for r in results:
        print(f"{r['method']:8s} {r['distribution']:8s} {r['sparsity']:.2f}  acc {100 * r['test_acc_mean']:.2f} "
              f"± {100 * r['test_acc_std']:.2f}  flops {r['train_flops_ratio']:.3f}x  wall {r['wall_s_mean']:.1f}s "
              f"cpu {r['cpu_s_mean']:.1f}s")
    print(json.dumps(payload["floors"], indent=1))


def _floors(results: list[dict], imp: list[dict], wall: float) -> dict[str, Any]:
    acc = {(r["method"], r["distribution"], r["sparsity"]): r["test_acc_mean"] for r in results}
    wall_of = {(r["method"], r["distribution"], r["sparsity"]): r["wall_s_mean"] for r in results}
    cpu_of = {(r["method"], r["distribution"], r["sparsity"]): r["cpu_s_mean"] for r in results}
    out: dict[str, Any] = {}
    for s in SPARSITIES:
        need = 0.0 if s == 0.95 else 0.005
        out[f"rigl_erk_ge_static_erk_plus_{need}_at_{s}"] = acc["rigl", "erk", s] >= acc["static", "erk", s] + need
        out[f"rigl_erk_ge_set_erk_minus_0.005_at_{s}"] = acc["rigl", "erk", s] >= acc["set", "erk", s] - 0.005
        out[f"rigl_wall_le_1.3x_static_at_{s}"] = wall_of["rigl", "erk", s] <= 1.3 * wall_of["static", "erk", s]
        out[f"rigl_over_static_cpu_s_at_{s}"] = round(cpu_of["rigl", "erk", s] / cpu_of["static", "erk", s], 3)
    near = next((r for r in imp if r["for_sparsity"] == 0.9), None)
    out["rigl_2x_within_0.01_of_imp_at_0.9"] = (None if near is None
                                                 else acc["rigl_2x", "erk", 0.9] >= near["test_acc_mean"] - 0.01)
    out["benchmark_wall_le_1500s"] = wall <= 1500
    return out


if __name__ == "__main__":
    main()
