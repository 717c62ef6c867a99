"""Benchmark: pruning at init (GraSP, SNIP, SynFlow, random) vs IMP and 2:4 tickets on mnist5k / Conv-4.

Conv-4 at width 0.25 of its 64-channel base, 2 seeds, one training budget for every network (the dense
baseline, every ticket, every IMP round). Sparsities 0.9 and 0.95 (fraction removed, global selection,
output layer included). GraSP scores as the official code does (fc weights redrawn Xavier-normal in the
scored copy, `grasp`); `grasp_no_reinit` scores the net's own fc weights and is reported alongside.
IMP prunes by global magnitude 43.77% per round (4 rounds -> 0.9) then 50% (round 5 -> 0.95), rewinding
to the init each time. `imp_2:4` prunes the trained dense net to 2:4 and rewinds to init; `oneshot_2:4`
prunes it to 2:4 and retrains from the trained weights (NVIDIA ASP). The first conv (1 input channel,
no pad-free 4-groups) stays dense under 2:4 (nm_policy dense); its 144 weights are why the 2:4
density is slightly above 0.5.

The library calls behind `lottery find grasp/snip/synflow/random/imp` and `lottery finetune`
(compress.finders.pai.prune_at_init, compress.pruning, compress.train), driven directly so each seed's dense
baseline is trained once and shared. Writes benchmarks/results/prune_at_init.json and prune_at_init.png.
Run at the defaults (the committed result): python -m benchmarks.prune_at_init
Quick check: python -m benchmarks.prune_at_init --epochs 0.2 --seeds 1 --results /tmp/r
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from benchmarks.common import Run, arguments
from compress import data as datasets
from compress import scoring
from compress.finders.pai import PaiHparams, prune_at_init
from compress.mask import Mask
from compress.models import ModelSpec, build
from compress.pruning import PruneHparams, layer_fractions, prune
from compress.selection.guard import LayerCollapseError
from compress.train import TrainHparams, train

SPARSITIES = (0.9, 0.95)
# (row name, scorer, PaiHparams overrides). `grasp` follows the official code (fc weights redrawn
# Xavier-normal in the scored copy); `grasp_no_reinit` scores the net's own fc weights, for comparison.
PAI_METHODS = (("grasp", "grasp", {}), ("grasp_no_reinit", "grasp", {"grasp_reinit_linear": False}),
               ("snip", "snip", {}), ("synflow", "synflow", {}), ("random", "random", {}))
IMP_RATES = (1 - 0.1 ** 0.25,) * 4 + (0.5,)  # densities 0.1 after round 4, 0.05 after round 5


def _train(spec, start, mask, data, hp, seed):
    model = build(spec)
    model.load_state_dict(start)
    r = train(model, data, hp, mask=mask, seed=seed)
    return model, r


def run(epochs: float, seeds: int) -> dict:
    data = datasets.get("mnist5k")
    spec = ModelSpec("conv4", data.input_shape, data.num_classes, 0.25)
    thp = TrainHparams(lr=1e-3, epochs=epochs, batch_size=60, eval_every=100)
    res: dict[tuple[str, float], dict] = {}

    def add(method, sparsity, acc, score_s, train_s, density):
        e = res.setdefault((method, sparsity), {"acc": [], "score_s": [], "train_s": [], "density": []})
        e["acc"].append(acc)
        e["score_s"].append(score_s)
        e["train_s"].append(train_s)
        e["density"].append(density)
        print(f"  {method:12s} s={sparsity:.2f} density={density:.4f} acc={acc} score {score_s:.2f}s "
              f"train {train_s:.1f}s", flush=True)

    dense_accs, dense_walls = [], []
    for seed in range(seeds):
        print(f"seed {seed}", flush=True)
        init_model = build(spec, seed=seed)
        init = {k: v.clone() for k, v in init_model.state_dict().items()}
        full = Mask.ones_like(init_model)
        dense, rd = _train(spec, init, full, data, thp, seed)
        dense_accs.append(rd.test_acc)
        dense_walls.append(rd.wall_s)
        print(f"  dense acc {rd.test_acc:.4f} ({rd.wall_s:.1f}s)", flush=True)
        for method, scorer, extra in PAI_METHODS:
            for s in SPARSITIES:
                hp = PaiHparams(train=thp, sparsity=s, **extra)
                model = build(spec)
                model.load_state_dict(init)
                try:
                    mask, score_s = prune_at_init(scorer, model, data, hp, seed)
                except LayerCollapseError as e:
                    print(f"  {method} s={s}: collapse: {e}", flush=True)
                    add(method, s, None, 0.0, 0.0, None)
                    continue
                _, r = _train(spec, init, mask, data, thp, seed)
                add(method, s, r.test_acc, score_s, r.wall_s, mask.density)
        # IMP: global magnitude, rewind to init, train_s counts every round up to the level.
        mask, trained, train_s, score_s = full, dense, rd.wall_s, 0.0
        for rnd, rate in enumerate(IMP_RATES, 1):
            t0 = time.perf_counter()
            fr = layer_fractions(trained, PruneHparams(rate=rate, output_rate_factor=1.0, selection="global"))
            mask = prune(trained, mask, scoring.get("magnitude")(trained), fr, "global", input_shape=spec.input_shape)
            score_s += time.perf_counter() - t0
            trained, ri = _train(spec, init, mask, data, thp, seed)
            train_s += ri.wall_s
            if rnd in (4, 5):
                add("imp", SPARSITIES[rnd - 4], ri.test_acc, score_s, train_s, mask.density)
        # 2:4 from the trained dense net: rewound to init (IMP ticket) or retrained from trained weights (ASP).
        for method, start in (("imp_2:4", init), ("oneshot_2:4", dense.state_dict())):
            t0 = time.perf_counter()
            nm_mask = prune(dense, full, scoring.get("magnitude")(dense), layer_fractions(dense, PruneHparams(
                rate=0.5, output_rate_factor=1.0)), "2:4", input_shape=spec.input_shape, nm_policy="dense")
            score_s = time.perf_counter() - t0
            _, r2 = _train(spec, start, nm_mask, data, thp, seed)
            add(method, 0.5, r2.test_acc, score_s, rd.wall_s + r2.wall_s, nm_mask.density)

    results = []
    for (method, s), e in res.items():
        accs = [a for a in e["acc"] if a is not None]
        results.append({
            "method": method, "sparsity": s,
            "test_acc_mean": statistics.fmean(accs) if accs else None, "test_acc_per_seed": e["acc"],
            "score_s": round(statistics.fmean(e["score_s"]), 3), "train_s": round(statistics.fmean(e["train_s"]), 2),
            "density_mean": statistics.fmean(d for d in e["density"] if d is not None) if accs else None,
        })
    dense_s = statistics.fmean(dense_walls)
    return {
        "model": "conv4 (width 0.25 of the 64-channel base: convs 16,16,32,32; fc 64,64,10)",
        "net": "conv4", "width": 0.25, "dataset": "mnist5k (4,000 train incl. 500 val / 1,000 test)",
        "seeds": seeds, "train": {"optimizer": "adam", "lr": thp.lr, "batch_size": thp.batch_size, "epochs": epochs},
        "dense_test_acc": statistics.fmean(dense_accs), "dense_test_acc_per_seed": dense_accs,
        "dense_train_s": round(dense_s, 2), "results": results, "threads": torch.get_num_threads(),
        "note": f"train_s for IMP sums the dense run ({dense_s:.1f} s on average) and every round up to that level; "
                "for the 2:4 tickets it is the dense run plus one retraining. Controls (reinit/random-mask) are not "
                "trained here. grasp scores a copy with Xavier-redrawn fc weights (PaiHparams.grasp_reinit_linear "
                "True, as the official code's reinit); grasp_no_reinit scores the net's own fc weights.",
    }


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in ("imp", "grasp", "grasp_no_reinit", "snip", "synflow", "random"):
        pts = sorted((1 - r["sparsity"], r["test_acc_mean"]) for r in report["results"]
                     if r["method"] == method and r["test_acc_mean"] is not None)
        if pts:
            ax.plot(*zip(*[(100 * d, a) for d, a in pts], strict=True), marker="o",
                    ls={"random": "--", "grasp_no_reinit": ":"}.get(method, "-"), label=method)
    for method, marker in (("imp_2:4", "s"), ("oneshot_2:4", "D")):
        for r in report["results"]:
            if r["method"] == method and r["test_acc_mean"] is not None:
                ax.plot([100 * r["density_mean"]], [r["test_acc_mean"]], marker=marker, ls="", label=method)
    ax.axhline(report["dense_test_acc"], color="grey", ls=":", label=f"dense ({report['dense_test_acc']:.4f})")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("weights remaining (%)")
    ax.set_ylabel("test accuracy (mean of seeds)")
    ax.set_title("Conv-4 (width 0.25) on mnist5k: pruning at init vs IMP vs 2:4")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    a = arguments(p, argv)
    bench = Run("prune_at_init", p, a)
    torch.set_num_threads(a.threads)
    rep = run(a.epochs, a.seeds)
    bench.write(rep)
    _plot(rep, Path(a.results) / "prune_at_init.png")
    print(f"wrote {Path(a.results) / 'prune_at_init.png'}")
    for r in rep["results"]:
        print(r["method"], r["sparsity"], r["test_acc_mean"], r["score_s"])
    print("dense", rep["dense_test_acc"])


if __name__ == "__main__":
    main()
