"""Data hyper-cleaning on mnist5k (the MRBO/VRBO paper's experiment): stocBiO vs MRBO vs VRBO.

10% and 20% of the 3,500 training labels flipped; per-sample weights sigmoid(lambda_i) (upper) and a
linear classifier (lower), validation loss on the 500 clean validation digits, test accuracy on 1,000.
Every optimizer uses the Neumann hypergradient with the public code's eta = 0.5, Q = 3.

Tuning (the same grid for every optimizer, never tuned down): each configuration runs `--tune-s` seconds
on a separate draw of the label noise (20%, flip seed 100); the one with the lowest final validation loss
is then run for `--budget-s` seconds on the reported problems (flip seed 0). The clock is this thread's CPU
time with evaluation excluded: on a machine shared with other jobs it is what the wall time would be
alone on one core (plain wall seconds are recorded beside it).

Writes benchmarks/results/hypercleaning_mnist5k.json and .png.
Run: python -m benchmarks.hypercleaning_mnist5k [--budget-s 30] [--tune-s 4]
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

import torch

from benchmarks.common import RESULTS, machine, write
from compress import data as datasets
from compress.bilevel import MRBO, VRBO, MrboSettings, NeumannOracle, StocBiO, StocBiOSettings, VrboSettings
from compress.bilevel.hypercleaning import HyperCleaning

ORACLE = NeumannOracle(eta=0.5, q=3)
LOWER_LRS, UPPER_LRS = (0.1, 0.3, 1.0), (100.0, 300.0, 1000.0)
# The same 9-point learning-rate grid for every optimizer; the other settings are fixed: stocBiO T = 5 (the
# public code's T = 200 is sized for 20,000 samples and 5 beat 20 in a trial), MRBO m = 50, VRBO the public
# code's q = 3, T = 3.
# `b` is the batch (the public code's 1000; VRBO's large batch, its small one stays 32).
GRIDS = {
    "stocbio": (StocBiO, lambda lo, up, b: StocBiOSettings(lo, up, inner_steps=5, batch_size=b, upper_batch_size=b)),
    "mrbo": (MRBO, lambda lo, up, b: MrboSettings(lo, up, batch_size=b, upper_batch_size=b, m=50.0)),
    "vrbo": (VRBO, lambda lo, up, b: VrboSettings(lo, up, period=3, inner_steps=3, large_batch=b)),
}


def trace(name: str, settings, problem: HyperCleaning, budget_s: float, evals: int = 50) -> dict:
    """Run one optimizer for `budget_s` CPU seconds; evaluate `evals` times (clock paused)."""
    cls = GRIDS[name][0]
    x0, y0 = problem.init(0)
    opt = cls(problem, x0, y0, settings, ORACLE, seed=0)
    curve = [{"cpu_s": 0.0, "wall_s": 0.0, "samples": 0, "iteration": 0, **problem.evaluate(opt.x, opt.y)}]
    cpu = wall = 0.0
    next_eval = budget_s / evals
    while cpu < budget_s:
        c0, w0 = time.thread_time(), time.perf_counter()
        opt.step()
        cpu += time.thread_time() - c0
        wall += time.perf_counter() - w0
        if cpu >= next_eval or cpu >= budget_s:
            next_eval += budget_s / evals
            ev = problem.evaluate(opt.x, opt.y)
            if not all(map(torch.isfinite, map(torch.tensor, ev.values()))):
                curve.append({"cpu_s": cpu, "wall_s": wall, "samples": opt.samples, "diverged": True})
                break
            curve.append({"cpu_s": round(cpu, 3), "wall_s": round(wall, 3), "samples": opt.samples,
                          "iteration": opt.iteration, **ev})
    return {"optimizer": name, "settings": vars(settings), "curve": curve}


def final(tr: dict) -> float:
    last = tr["curve"][-1]
    return float("inf") if last.get("diverged") else last["val_loss"]


def tune(data, tune_s: float, batch: int) -> tuple[dict, list[dict]]:
    problem = HyperCleaning.from_dataset(data, 0.2, seed=100)
    best, rows = {}, []
    for name, (_, make) in GRIDS.items():
        for lo, up in itertools.product(LOWER_LRS, UPPER_LRS):
            s = make(lo, up, batch)
            loss = final(trace(name, s, problem, tune_s, evals=5))
            rows.append({"optimizer": name, "settings": vars(s), "final_val_loss": loss})
            print(f"tune {name:8s} {vars(s)} -> {loss:.4f}", flush=True)
            if loss < best.get(name, (float("inf"), None))[0]:
                best[name] = (loss, s)
    return {n: s for n, (_, s) in best.items()}, rows


def time_to(curve: list[dict], target: float) -> float | None:
    return next((p["cpu_s"] for p in curve if p.get("val_loss", float("inf")) <= target), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-s", type=float, default=30.0)
    ap.add_argument("--tune-s", type=float, default=4.0)
    ap.add_argument("--batch", type=int, default=1000, help="batch size (other than 1000: a _b<N> result file)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    start = time.perf_counter()
    data = datasets.get("mnist5k")
    chosen, tuning = tune(data, args.tune_s, args.batch)
    results, traces = [], []
    for noise in (0.1, 0.2):
        problem = HyperCleaning.from_dataset(data, noise, seed=0)
        runs = {n: trace(n, chosen[n], problem, args.budget_s) for n in GRIDS}
        base = final(runs["stocbio"])
        for n, tr in runs.items():
            last = tr["curve"][-1]
            results.append({"optimizer": n, "noise": noise, "final_val_loss": final(tr), "test_acc": last["test_acc"],
                            "wall_s": last["cpu_s"], "wall_clock_s": last["wall_s"],
                            "time_to_baseline_final_s": time_to(tr["curve"], base), "samples": last["samples"],
                            "iterations": last["iteration"], "weight_gap": last["weight_gap"],
                            "settings": tr["settings"]})
            traces.append({"noise": noise, **tr})
            print(f"noise {noise} {n:8s} val {final(tr):.4f} test_acc {last['test_acc']:.4f} "
                  f"to-baseline {results[-1]['time_to_baseline_final_s']}", flush=True)
    floors = {}
    for noise in (0.1, 0.2):
        rows = {r["optimizer"]: r for r in results if r["noise"] == noise}
        for n in ("mrbo", "vrbo"):
            t = rows[n]["time_to_baseline_final_s"]
            floors[f"{n}_noise{noise}_faster_than_stocbio"] = t is not None and t < rows["stocbio"]["wall_s"]
            floors[f"{n}_noise{noise}_test_acc_ge_stocbio"] = rows[n]["test_acc"] >= rows["stocbio"]["test_acc"]
    payload = {"results": results, "wall_s": round(time.perf_counter() - start, 1), "machine": machine(),
               "load_average": [round(v, 2) for v in os.getloadavg()], "floors": floors,
               "clock": "wall_s and time_to_baseline_final_s are this thread's CPU seconds spent in optimizer steps "
                        "(evaluation excluded): the wall time of a single-threaded run alone; wall_clock_s is the "
                        "raw wall time under the machine's load.",
               "budget_s": args.budget_s, "tune_s": args.tune_s, "batch": args.batch,
               "neumann": {"eta": ORACLE.eta, "q": ORACLE.q},
               "tuning": tuning, "curves": traces}
    name = "hypercleaning_mnist5k" + ("" if args.batch == 1000 else f"_b{args.batch}")
    write(name, payload)
    plot(traces, RESULTS / f"{name}.png")
    print(floors)


def plot(traces: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for row, noise in enumerate((0.1, 0.2)):
        for tr in (t for t in traces if t["noise"] == noise):
            pts = [p for p in tr["curve"] if "val_loss" in p]
            for col, key in enumerate(("cpu_s", "samples")):
                axes[row][col].plot([p[key] for p in pts], [p["val_loss"] for p in pts], label=tr["optimizer"])
        for col, xlabel in enumerate(("time (s, one core)", "samples drawn")):
            ax = axes[row][col]
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("validation loss")
            ax.set_title(f"hyper-cleaning mnist5k, {int(noise * 100)}% labels flipped")
            ax.grid(True, alpha=0.3)
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
