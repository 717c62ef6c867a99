"""LTH protocol on mnist5k: LeNet-300-100, Adam 1.2e-3, batch 60, layer-wise 20%/round (output 10%),
rewind to init, 12 rounds, 2 seeds, reinit and random-mask controls at every level.

Writes benchmarks/results/imp_lenet_mnist5k.json and copies the plot to benchmarks/results/.
Usage: python -m benchmarks.imp_lenet_mnist5k [--epochs 20] [--out DIR]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import RESULTS, machine, peak_rss_mb, write
from compress import finders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="run root (default: a fresh temp dir)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("lottery").setLevel(logging.INFO)

    hp = finders.make_hparams("imp", {
        "model.model": "lenet_300_100", "data.dataset": "mnist5k", "train.optimizer": "adam", "train.lr": 1.2e-3,
        "train.batch_size": 60, "train.epochs": args.epochs, "prune.rate": 0.2, "prune.selection": "layerwise",
        "prune.output_rate_factor": 0.5, "rewind": "init", "rounds": args.rounds,
    })
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-imp-"))
    start = time.perf_counter()
    report = finders.find("imp", hp, list(range(args.seeds)), out)
    wall = time.perf_counter() - start

    levels = []
    for r in report["levels"]:
        per_seed = [{"seed": s, "ticket_test_acc": a} for s, a in zip(r["seeds"], r["test_acc_per_seed"], strict=True)]
        for kind in ("reinit", "random"):
            for entry, acc in zip(per_seed, r.get(f"{kind}_test_acc_per_seed", []), strict=False):
                entry[f"{kind}_test_acc"] = acc
        levels.append({"level": r["level"], "density": r["density"], "ticket_test_acc": r["test_acc_mean"],
                       "reinit_test_acc": r.get("reinit_test_acc_mean"),
                       "random_test_acc": r.get("random_test_acc_mean"),
                       "early_stop_iter": r["early_stop_iter"], "verdict": r["verdict"], "per_seed": per_seed})
    near = min(levels[1:], key=lambda r: abs(r["density"] - 0.107))
    dense = report["dense_test_acc"]
    floors = {
        "level_near_10.7pct": near["level"],
        "ticket_ge_dense_minus_0.005": near["ticket_test_acc"] >= dense - 0.005,
        "ticket_ge_reinit_plus_0.01": near["ticket_test_acc"] >= near["reinit_test_acc"] + 0.01,
        "wall_le_600s": wall <= 600,
    }
    payload = {"model": "lenet_300_100", "dataset": "mnist5k", "seeds": args.seeds, "epochs": args.epochs,
               "dense_test_acc": dense, "levels": levels, "wall_s": round(wall, 1), "peak_rss_mb": peak_rss_mb(),
               "floors": floors, "machine": machine(), "run_dir": report["run_dir"]}
    floors["peak_rss_le_2048mb"] = payload["peak_rss_mb"] <= 2048
    write("imp_lenet_mnist5k", payload)
    shutil.copy(Path(report["run_dir"]) / "accuracy_vs_density.png", RESULTS / "imp_lenet_mnist5k.png")
    print(f"dense {dense:.4f}; level {near['level']} ({100 * near['density']:.1f}%): "
          f"ticket {near['ticket_test_acc']:.4f} reinit {near['reinit_test_acc']:.4f} "
          f"random {near['random_test_acc']:.4f}; wall {wall:.0f}s; floors {floors}")


if __name__ == "__main__":
    main()
