"""Benchmark: trained float conv4 vs Multi-Prize Tickets (MPT-1/32, MPT-1/1) and a binarized IMP ticket on mnist5k.

Every network through pipelines.api (`lottery find mpt`, `lottery find imp`, `lottery binarize`), in `--workers`
processes of one torch thread each. Conv-4 at widths 0.25 and 0.5, keep 0.5 and 0.2; the float net of the same
architecture (BatchNorm with learned affine, as in the MPT nets) is MPT's level 0. The binarized IMP ticket: plain
conv4, 2 IMP rounds of 50%, its most accurate pruned level binarized (1-bit weights with a per-channel scale, float
activations, first/last layers float) and finetuned.
Writes benchmarks/results/mpt_mnist5k.json after every finished job ("complete": false until all are done, so a
cut-short run leaves real partial figures).
Run at the defaults (the committed result): python -m benchmarks.mpt_mnist5k
Quick check: python -m benchmarks.mpt_mnist5k --epochs 0.2 --binary-epochs 0.2 --results /tmp/r
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from benchmarks.common import Run, arguments

ROOT = Path(__file__).resolve().parents[1]
FLOAT_TRAIN = {"optimizer": "adam", "lr": 1e-3, "schedule": "cosine", "batch_size": 64, "eval_every": 100}
SCORE_TRAIN = {"eval_every": 100}  # MptHparams.scores defaults otherwise (Adam 0.01, cosine, batch 64)


def _scope(width: float, seed: int) -> dict[str, Any]:
    return {"model": "conv4", "width": width, "dataset": "mnist5k", "seed": seed, "threads": 1}


def _kv(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items())


def _bits(ticket_dir: Path) -> dict[str, int]:
    from compress.binarize.summary import summarize
    from compress.ticket import Ticket

    s = summarize(Ticket.load(ticket_dir).model("final"))
    return {k: int(s[k]) for k in ("bits_total", "float32_bits_total", "binary_bits", "binary_float32_bits")}


def mpt_job(width: float, act: str, keep: float, seed: int, epochs: float, baseline: bool, out: str) -> list[dict]:
    from compress.ticket import Ticket
    from pipelines import api

    rep = api.run("mpt", out=out, scope=_scope(width, seed), keep=keep, act=act, baseline=baseline,
                  scores={**SCORE_TRAIN, "epochs": epochs}, baseline_train={**FLOAT_TRAIN, "epochs": epochs})
    rows = []
    for level, config in ((0, "float"), (1, "mpt-1/1" if act == "binary" else "mpt-1/32")):
        if level == 0 and not baseline:
            continue
        d = Path(rep["run_dir"]) / f"seed-{seed}" / f"level-{level}"
        m = Ticket.load(d).metrics
        rows.append({"config": config, "width": width, "keep": 1.0 if level == 0 else keep, "seed": seed,
                     "test_acc": m["test_acc"], "wall_s": m["wall_s"], **_bits(d)})
    rows[-1]["job_wall_s"] = rep["wall_s"]
    return rows


def imp_binarize_job(width: float, epochs: float, out: str) -> list[dict]:
    import time

    from pipelines import api

    start = time.perf_counter()
    imp = api.run("imp", out=out, scope=_scope(width, 0), rounds=2, prune={"rate": 0.5},
                  train={**FLOAT_TRAIN, "epochs": epochs}, controls={"controls": []})
    best = max((r for r in imp["details"]["levels"] if r["level"] > 0), key=lambda r: r["test_acc_mean"])
    src = Path(imp["run_dir"]) / "seed-0" / f"level-{best['level']}"
    rep = api.run("binarize", input=src, scope={"threads": 1}, act="float", train={"epochs": epochs,
                                                                                  "eval_every": 100})
    return [{"config": "binarized-imp", "width": width, "keep": rep["metrics"]["density"], "seed": 0,
             "test_acc": rep["metrics"]["test_acc"], **_bits(api.artifact(rep, "ticket")),
             "imp_level": best["level"], "imp_test_acc": best["test_acc_mean"],
             "wall_s": round(time.perf_counter() - start, 1)}]


def aggregate(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["config"], r["width"], round(r["keep"], 4)), []).append(r)
    results = []
    for (config, width, keep), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0], -kv[0][2])):
        accs = [r["test_acc"] for r in sorted(rs, key=lambda r: r["seed"])]
        results.append({"config": config, "width": width, "keep": keep, "test_acc_mean": statistics.fmean(accs),
                        "test_acc_per_seed": accs,
                        **{k: rs[0][k] for k in ("bits_total", "float32_bits_total", "binary_bits",
                                                 "binary_float32_bits")},
                        "wall_s": round(sum(r["wall_s"] for r in rs), 1),
                        **({"imp_level": rs[0]["imp_level"], "imp_test_acc": rs[0]["imp_test_acc"]}
                           if "imp_level" in rs[0] else {})})
    return results


def jobs(e: float, eb: float, o: str) -> list[tuple]:
    return [(mpt_job, (0.5, "binary", 0.5, 0, eb, False, o)), (mpt_job, (0.5, "binary", 0.5, 1, eb, False, o)),
            (mpt_job, (0.5, "binary", 0.2, 0, eb, False, o)), (mpt_job, (0.5, "float", 0.5, 0, e, True, o)),
            (mpt_job, (0.5, "float", 0.5, 1, e, True, o)), (mpt_job, (0.5, "float", 0.2, 0, e, False, o)),
            (mpt_job, (0.25, "float", 0.5, 0, e, True, o)), (mpt_job, (0.25, "binary", 0.5, 0, eb, False, o)),
            (mpt_job, (0.25, "binary", 0.2, 0, eb, False, o)), (mpt_job, (0.25, "float", 0.2, 0, e, False, o)),
            (imp_binarize_job, (0.25, e, o))]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2, help="worker processes (one torch thread each)")
    ap.add_argument("--epochs", type=float, default=3, help="epochs of the float nets, MPT-1/32 scores, IMP levels "
                                                           "and the binarized IMP finetune")
    ap.add_argument("--binary-epochs", type=float, default=4, help="epochs of the MPT-1/1 scores")
    ap.add_argument("--out", default=None, help="run root (default: a fresh temp dir)")
    args = arguments(ap, argv)
    run = Run("mpt_mnist5k", ap, args)
    e, eb = args.epochs, args.binary_epochs
    out = args.out or tempfile.mkdtemp(prefix="bench-mpt-")
    todo = jobs(e, eb, out)
    note = (f"{args.workers} worker processes x 1 torch thread. Float nets, MPT-1/32 scores, IMP levels and the "
            f"binarized IMP finetune trained {e} epochs, MPT-1/1 scores {eb} epochs. Float nets and IMP: "
            f"{_kv(FLOAT_TRAIN)}; MPT scores: the mpt method's defaults plus {_kv(SCORE_TRAIN)}; binarize: its "
            "defaults with act float. wall_s per row sums its seeds' training (binarized-imp: the whole IMP + "
            "binarize job).")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    rows: list[dict] = []
    failed: list[str] = []

    def payload(done: int) -> dict[str, Any]:
        return {"model": "conv4", "dataset": "mnist5k", "complete": done == len(todo) and not failed,
                "jobs_done": done, "jobs_total": len(todo), "jobs_failed": failed, "note": note,
                "results": aggregate(rows)}

    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(fn, *a): (fn.__name__, a[:-1]) for fn, a in todo}
        for done, f in enumerate(as_completed(futures), 1):
            try:
                rows += f.result()
            except Exception as ex:  # keep the other jobs' figures, say which failed and why
                failed.append(f"{futures[f][0]}{futures[f][1]}: {type(ex).__name__}: {ex}")
                print(f"job {futures[f]} failed: {ex}", file=sys.stderr)
            if done < len(todo):  # partial figures; the last write waits for the workers (their peak RSS)
                run.write(payload(done), echo=False)
                print(f"{done}/{len(todo)} jobs, {len(rows)} rows", flush=True)
    run.write(payload(len(todo)))
    for r in aggregate(rows):
        print(f"{r['config']:14s} width {r['width']:<5} keep {r['keep']:<6} test_acc {r['test_acc_mean']:.4f} "
              f"bits {r['bits_total']:,}")


if __name__ == "__main__":
    main()
