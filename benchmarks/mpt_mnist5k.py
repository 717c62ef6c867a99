"""Benchmark: trained float conv4 vs Multi-Prize Tickets (MPT-1/32, MPT-1/1) and a binarized IMP ticket on mnist5k.

Writes benchmarks/results/mpt_mnist5k.json (rewritten after every finished job, so a cut-short run still
leaves real partial figures). Jobs run in `--workers` processes (one torch thread each).
Usage: python benchmarks/mpt_mnist5k.py [--workers 2] [--out runs-bench] [--epochs 3] [--binary-epochs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "mpt_mnist5k.json"


def _settings(width: float, act: str, keep: float, epochs: float, baseline: bool) -> dict:
    return {"model.model": "conv4", "model.width": width, "data.dataset": "mnist5k", "act": act, "keep": keep,
            "baseline": baseline, "train.lr": 1e-3, "train.epochs": epochs, "train.schedule": "cosine",
            "train.batch_size": 64, "scores.epochs": epochs, "train.eval_every": 100, "scores.eval_every": 100}


def mpt_job(width: float, act: str, keep: float, seed: int, epochs: float, baseline: bool, out: str) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    from compress import finders
    from compress.io import load_json

    start = time.perf_counter()
    hp = finders.make_hparams("mpt", _settings(width, act, keep, epochs, baseline))
    report = finders.find("mpt", hp, [seed], out)
    run = Path(report["run_dir"]) / f"seed-{seed}"
    rows = []
    for level, config in ((0, "float"), (1, "mpt-1/1" if act == "binary" else "mpt-1/32")):
        if level == 0 and not baseline:
            continue
        meta = load_json(run / f"level-{level}" / "ticket.json")["meta"]
        rows.append({"config": config, "width": width, "keep": 1.0 if level == 0 else keep, "seed": seed,
                     "test_acc": meta["metrics"]["test_acc"], "bits_total": meta["bits_total"],
                     "float32_bits_total": meta["float32_bits_total"], "binary_bits": meta["binary_bits"],
                     "binary_float32_bits": meta["binary_float32_bits"], "wall_s": meta["metrics"]["wall_s"]})
    rows[-1]["job_wall_s"] = round(time.perf_counter() - start, 1)
    return rows


def imp_binarize_job(width: float, epochs: float, out: str) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    from compress.binarize.finetune import BinarizeHparams, run

    from compress import finders

    start = time.perf_counter()
    hp = finders.make_hparams("imp", {"model.model": "conv4", "model.width": width, "data.dataset": "mnist5k",
                                      "rounds": 2, "prune.rate": 0.5, "train.lr": 1e-3, "train.epochs": epochs,
                                      "train.schedule": "cosine", "train.batch_size": 64, "train.eval_every": 100,
                                      "controls.controls": []})
    report = finders.find("imp", hp, [0], out)
    best = max((r for r in report["levels"] if r["level"] > 0), key=lambda r: r["test_acc_mean"])
    bhp = BinarizeHparams(train=BinarizeHparams().train.replace(epochs=epochs, eval_every=100))
    rep = run(report["run_dir"], bhp, level=best["level"])
    return [{"config": "binarized-imp", "width": width, "keep": rep["density"], "seed": 0,
             "test_acc": rep["test_acc"],
             "bits_total": rep["bits_total"], "float32_bits_total": rep["float32_bits_total"],
             "binary_bits": rep["binary_bits"], "binary_float32_bits": rep["binary_float32_bits"],
             "imp_level": best["level"], "imp_test_acc": best["test_acc_mean"],
             "wall_s": round(time.perf_counter() - start, 1)}]


def aggregate(rows: list[dict], wall_s: float, note: str) -> dict:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["config"], r["width"], round(r["keep"], 4)), []).append(r)
    results = []
    for (config, width, keep), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0], -kv[0][2])):
        accs = [r["test_acc"] for r in sorted(rs, key=lambda r: r["seed"])]
        results.append({"config": config, "width": width, "keep": keep, "test_acc_mean": statistics.fmean(accs),
                        "test_acc_per_seed": accs, "bits_total": int(rs[0]["bits_total"]),
                        "float32_bits_total": int(rs[0]["float32_bits_total"]),
                        "binary_bits": int(rs[0]["binary_bits"]),
                        "binary_float32_bits": int(rs[0]["binary_float32_bits"]),
                        "wall_s": round(sum(r["wall_s"] for r in rs), 1),
                        **({"imp_level": rs[0]["imp_level"], "imp_test_acc": rs[0]["imp_test_acc"]}
                           if "imp_level" in rs[0] else {})})
    return {"model": "conv4", "dataset": "mnist5k", "wall_s": round(wall_s, 1), "note": note, "results": results}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="/tmp/lottery-bench-mpt")
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--binary-epochs", type=float, default=5)
    args = ap.parse_args()
    e, eb = args.epochs, args.binary_epochs
    o = args.out
    jobs = [(mpt_job, (0.5, "binary", 0.5, 0, eb, False, o)), (mpt_job, (0.5, "binary", 0.5, 1, eb, False, o)),
            (mpt_job, (0.5, "binary", 0.2, 0, eb, False, o)), (mpt_job, (0.5, "float", 0.5, 0, e, True, o)),
            (mpt_job, (0.5, "float", 0.5, 1, e, True, o)), (mpt_job, (0.5, "float", 0.2, 0, e, False, o)),
            (mpt_job, (0.25, "float", 0.5, 0, e, True, o)), (mpt_job, (0.25, "binary", 0.5, 0, eb, False, o)),
            (mpt_job, (0.25, "binary", 0.2, 0, eb, False, o)), (mpt_job, (0.25, "float", 0.2, 0, e, False, o)),
            (imp_binarize_job, (0.25, e, o))]
    note = (f"load average before the run {os.getloadavg()[0]:.1f} (above ~1 on 2 cores: other jobs shared the "
            f"CPU and wall times are inflated). {args.workers} worker processes x 1 thread. "
            f"Float and MPT-1/32 trained {e} epochs, MPT-1/1 {eb} epochs (Adam, cosine, "
            "batch 64); BatchNorm with learned affine in the float and MPT nets (same architecture); "
            "IMP (plain conv4, 2 rounds of 50%) then binarize (first/last layers float, per-channel scale) finetuned "
            f"{e} epochs.")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    start = time.perf_counter()
    rows: list[dict] = []
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(fn, *a): a for fn, a in jobs}
        for f in as_completed(futures):
            try:
                rows += f.result()
            except Exception as ex:  # keep the other jobs' figures
                print(f"job {futures[f]} failed: {ex}", file=sys.stderr)
            out = aggregate(rows, time.perf_counter() - start, note)
            RESULT.parent.mkdir(parents=True, exist_ok=True)
            RESULT.write_text(json.dumps(out, indent=2) + "\n")
            print(f"[{time.perf_counter() - start:7.0f} s] {len(rows)} rows", flush=True)
    print(json.dumps(aggregate(rows, time.perf_counter() - start, note), indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
