"""LTH protocol on mnist5k: LeNet-300-100, Adam 1.2e-3, batch 60, layer-wise 20%/round (output 10%),
rewind to init, 12 rounds, 2 seeds, reinit and random-mask controls at every level (`lottery find imp`
through pipelines.api).

Writes benchmarks/results/imp_lenet_mnist5k.json and copies the accuracy-vs-density plot beside it.
Run at the defaults (the committed result): python -m benchmarks.imp_lenet_mnist5k
Quick check: python -m benchmarks.imp_lenet_mnist5k --epochs 1 --rounds 2 --seeds 1 --results /tmp/r
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import Run, arguments

NEAR_DENSITY = 0.107  # the LTH paper's 10.7%-remaining level


def levels_table(details: dict[str, Any]) -> list[dict[str, Any]]:
    """The finder's levels (all seeds) in this benchmark's shape: means, controls, per-seed accuracies."""
    out = []
    for r in details["levels"]:
        per_seed = [{"seed": s, "ticket_test_acc": a} for s, a in zip(r["seeds"], r["test_acc_per_seed"], strict=True)]
        for kind in ("reinit", "random"):
            for entry, acc in zip(per_seed, r.get(f"{kind}_test_acc_per_seed", []), strict=False):
                entry[f"{kind}_test_acc"] = acc
        out.append({"level": r["level"], "density": r["density"], "ticket_test_acc": r["test_acc_mean"],
                    "reinit_test_acc": r.get("reinit_test_acc_mean"), "random_test_acc": r.get("random_test_acc_mean"),
                    "early_stop_iter": r["early_stop_iter"], "verdict": r["verdict"], "per_seed": per_seed})
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=float, default=20, help="training epochs of every level and control")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="PyTorch threads (0: torch's default)")
    ap.add_argument("--out", type=Path, default=None, help="run root (default: a fresh temp dir)")
    args = arguments(ap, argv)
    run = Run("imp_lenet_mnist5k", ap, args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from pipelines import api

    out = args.out or Path(tempfile.mkdtemp(prefix="bench-imp-"))
    rep = api.run("imp", out=out, scope={"model": "lenet_300_100", "dataset": "mnist5k", "seeds": args.seeds,
                                         "threads": args.threads},
                  rounds=args.rounds, rewind="init",
                  train={"optimizer": "adam", "lr": 1.2e-3, "batch_size": 60, "epochs": args.epochs},
                  prune={"rate": 0.2, "selection": "layerwise", "output_rate_factor": 0.5},
                  controls={"controls": ["reinit", "random"]})
    levels = levels_table(rep["details"])
    dense = rep["details"]["dense_test_acc"]
    near = min(levels[1:], key=lambda r: abs(r["density"] - NEAR_DENSITY))
    facts = run.facts()
    floors = {
        "level_near_10.7pct": near["level"],
        "ticket_ge_dense_minus_0.005": near["ticket_test_acc"] >= dense - 0.005,
        "ticket_ge_reinit_plus_0.01": near["ticket_test_acc"] >= near["reinit_test_acc"] + 0.01,
        "wall_le_600s": facts["wall_s"] <= 600,
        "peak_rss_le_2048mb": facts["peak_rss_mb"] <= 2048,
    }
    run.write({"model": "lenet_300_100", "dataset": "mnist5k", "seeds": args.seeds, "epochs": args.epochs,
               "rounds": args.rounds, "dense_test_acc": dense, "levels": levels, "floors": floors,
               "selected_level": rep["details"]["selected_level"], "imp_settings": rep["settings"],
               "run_wall_s": rep["wall_s"], "run_dir": rep["run_dir"]}, facts=facts)
    run.copy_plot(api.artifact(rep, "plot"))
    print(f"dense {dense:.4f}; level {near['level']} ({100 * near['density']:.1f}%): "
          f"ticket {near['ticket_test_acc']:.4f} reinit {near['reinit_test_acc']:.4f} "
          f"random {near['random_test_acc']:.4f}; wall {facts['wall_s']:.0f}s; floors {floors}")


if __name__ == "__main__":
    main()
