"""BiP (sgd and mrbo) vs IMP, one-shot magnitude + finetune and GraSP: LeNet-300-100 on mnist5k, 3 seeds.

Densities: the IMP levels nearest 0.2, 0.05 and 0.02 (IMP as in benchmarks/imp_lenet_mnist5k.py: Adam 1.2e-3,
batch 60, 20 epochs per round, layer-wise 20%/round with the output layer at 10%, rewind to init); every
other method is run at exactly the kept-weight count of that IMP level. Dense pretraining is IMP's level 0
(the same init, recipe and data order BiP's `pretrain` uses), shared by BiP and one-shot and counted in
their times. wall_s_mean is the time to produce the trained ticket:
- imp: the training time of levels 0..L (no controls are trained here);
- bip_*: dense pretraining + bilevel pruning + finetuning (`compress.bip.run.find_ticket`);
- oneshot: dense pretraining + finetuning of the magnitude-pruned trained net (layer-wise, at IMP's
  per-layer counts); oneshot_global prunes by one global magnitude threshold instead;
- grasp: scoring + training from init (`lottery find grasp`'s prune_at_init with its default settings).
Every (method, density, seed) result is kept in the run folder (`--out`), so an interrupted run resumes and
`--only-seed S` processes can fill in seeds side by side before the aggregating run.
Writes benchmarks/results/bip_mnist5k.json and .png. Run: python -m benchmarks.bip_mnist5k [--seeds 3] (--quick: a
smoke run of a few minutes whose JSON goes into --out only)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import RESULTS, at_least, machine, write
from compress import data as datasets
from compress.bip.run import find_ticket
from compress.bip.settings import BipHparams
from compress.data import Dataset
from compress.finders import imp
from compress.finders.pai import PaiHparams, prune_at_init
from compress.io import save_json
from compress.mask import Mask
from compress.models import ModelSpec, build, prunable
from compress.report.levels import collect
from compress.settings import ControlHparams, PruneHparams
from compress.ticket import Ticket
from compress.train import TrainHparams, train

TARGETS = (0.2, 0.05, 0.02)
NO_CONTROLS = ControlHparams(controls=())
# BiP's pruning-phase settings (the only tuned values; see the report's "bip" entry). Pretraining is IMP's level 0
# (passed in); the finetune is 20 epochs of the same recipe (BipHparams.finetune).
BIP = {"sgd": {"lower_lr": 0.05, "upper_lr": 1.0}, "mrbo": {"lower_lr": 0.3, "upper_lr": 10.0}}
BIP_COMMON = {"prune_epochs": 6.0, "finetune_epochs": 20.0, "pretrain_epochs": 20.0, "batch_size": 128}


def recipe(epochs: float) -> TrainHparams:
    return TrainHparams(optimizer="adam", lr=1.2e-3, batch_size=60, epochs=epochs)


def imp_levels(epochs: float, seeds: list[int], out: Path, data: Dataset, spec: ModelSpec) -> tuple[dict, Path]:
    """IMP (compress.finders.imp.run_seed, the `imp` method's per-seed run) into one run folder for every seed."""
    rounds = min(range(1, 30), key=lambda r: abs(0.8**r - TARGETS[-1]))  # 18: density 0.0186
    hp = imp.ImpHparams(rounds=rounds, rewind="init", train=recipe(epochs), controls=NO_CONTROLS,
                        prune=PruneHparams(rate=0.2, selection="layerwise", output_rate_factor=0.5))
    run = out / "imp"
    for seed in seeds:
        imp.run_seed(run, hp, data, spec, seed)
    return collect(run, NO_CONTROLS), run


def bip_settings(density: float, optimizer: str, lrs: dict, hp: TrainHparams, common: dict) -> BipHparams:
    ticket = hp.replace(eval_every=25)
    return BipHparams(density=density, bilevel_optimizer=optimizer, **lrs, prune_epochs=common["prune_epochs"],
                      batch_size=common["batch_size"], pretrain=ticket.replace(epochs=common["pretrain_epochs"]),
                      finetune=ticket.replace(epochs=common["finetune_epochs"]), controls=NO_CONTROLS)


def magnitude_mask(model: torch.nn.Module, counts: dict[str, int] | int) -> Mask:
    """Keep the largest-magnitude weights: `counts` per layer, or one global count."""
    w = prunable(model)
    if isinstance(counts, int):
        flat = torch.cat([v.detach().abs().flatten() for v in w.values()])
        keep = torch.zeros(len(flat), dtype=torch.bool)
        keep[torch.topk(flat, counts).indices] = True
        out, off = {}, 0
        for n, v in w.items():
            out[n] = keep[off : off + v.numel()].view(v.shape)
            off += v.numel()
        return Mask(out)
    out = {}
    for n, v in w.items():
        m = torch.zeros(v.numel(), dtype=torch.bool)
        m[torch.topk(v.detach().abs().flatten(), counts[n]).indices] = True
        out[n] = m.view(v.shape)
    return Mask(out)


def oneshot(spec: ModelSpec, dense: Ticket, counts, data: Dataset, hp: TrainHparams, seed: int) -> tuple[float, float]:
    model = dense.model("final")
    mask = magnitude_mask(model, counts)
    mask.apply(model)
    r = train(model, data, hp, mask=mask, seed=seed)
    return r.test_acc, r.wall_s


def grasp(spec: ModelSpec, density: float, data: Dataset, hp: TrainHparams, seed: int) -> tuple[float, float, float]:
    """`lottery find grasp`'s scoring and selection (PaiHparams defaults: global, 1 batch of 100), then training
    from the init; its dense baseline level is not trained here (it is not part of producing the ticket)."""
    settings = PaiHparams(sparsity=1 - density, train=hp, controls=NO_CONTROLS)
    model = build(spec, seed=seed)
    mask, score_s = prune_at_init("grasp", model, data, settings, seed)
    r = train(model, data, hp, mask=mask, seed=seed)
    return r.test_acc, score_s + r.wall_s, mask.density


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--only-seed", type=int, default=None, help="compute one seed's results into --out and stop")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 0.5 epochs everywhere, 1 pruning "
                                                          "epoch; writes its JSON into --out, not benchmarks/results")
    args = ap.parse_args()
    common = dict(BIP_COMMON)
    if args.quick:
        args.seeds, args.epochs = 1, 0.5
        common.update(prune_epochs=1.0, finetune_epochs=0.5, pretrain_epochs=0.5)
    torch.set_num_threads(1)
    start = time.perf_counter()
    seeds = list(range(args.seeds)) if args.only_seed is None else [args.only_seed]
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-bip-"))
    data = datasets.get("mnist5k")
    spec = ModelSpec("lenet_300_100", data.input_shape, data.num_classes, 1.0, "default")
    report, run = imp_levels(args.epochs, seeds, out, data, spec)
    tickets = {s: {lv["level"]: Ticket.load(run / f"seed-{s}" / f"level-{lv['level']}") for lv in report["levels"]}
               for s in seeds}
    rows: dict[tuple[str, float], dict[str, list]] = {}
    cache = out / "results"
    cache.mkdir(parents=True, exist_ok=True)

    def cached(method: str, target: float, seed: int, compute, settings: object = None) -> None:
        tag = hashlib.sha256(json.dumps([settings, args.epochs], sort_keys=True).encode()).hexdigest()[:8]
        path = cache / f"{method}-{target}-seed{seed}-{tag}.json"
        if not path.is_file():
            path.write_text(json.dumps(dict(zip(("acc", "wall", "density"), compute(), strict=True))))
        r = json.loads(path.read_text())
        add(method, target, r["acc"], r["wall"], r["density"])

    def add(method: str, target: float, acc: float, wall: float, density: float) -> None:
        e = rows.setdefault((method, target), {"acc": [], "wall": [], "density": []})
        e["acc"].append(acc)
        e["wall"].append(wall)
        e["density"].append(density)
        print(f"{method:15s} target {target:<5} seed {len(e['acc']) - 1} density {density:.4f} acc {acc:.4f} "
              f"wall {wall:.1f}s", flush=True)

    ticket_hp = recipe(args.epochs)
    for target in TARGETS:
        level = min((lv["level"] for lv in report["levels"][1:]),
                    key=lambda lv: abs(tickets[seeds[0]][lv].density - target))
        for s in seeds:
            t, dense = tickets[s][level], tickets[s][0]
            add("imp", target, t.metrics["test_acc"],
                sum(tickets[s][lv].metrics["wall_s"] for lv in range(level + 1)), t.density)
            dense_s = dense.metrics["wall_s"]
            counts = {n: int(m.sum()) for n, m in t.mask.items()}
            for method, c in (("oneshot", counts), ("oneshot_global", t.mask.kept)):
                def one(c=c, t=t, dense=dense, s=s, dense_s=dense_s):
                    acc, wall = oneshot(spec, dense, c, data, ticket_hp, s)
                    return acc, dense_s + wall, t.density
                cached(method, target, s, one)
            for opt, lrs in BIP.items():
                def bip(opt=opt, lrs=lrs, t=t, dense=dense, s=s, dense_s=dense_s):
                    hp = bip_settings(t.mask.kept / t.mask.total, opt, lrs, ticket_hp, common)
                    bt, hist = find_ticket(spec, data, hp, s, pretrained=dense.final)
                    assert bt.mask.kept == t.mask.kept
                    return bt.metrics["test_acc"], dense_s + hist["wall_s"], bt.density
                cached(f"bip_{opt}", target, s, bip, {**lrs, **common})
            cached("grasp", target, s, lambda s=s, d=t.density: grasp(spec, d, data, ticket_hp, s))
    if args.only_seed is not None:
        return

    results = [{"method": m, "density": statistics.fmean(e["density"]), "target_density": target,
                "test_acc_mean": statistics.fmean(e["acc"]), "test_acc_per_seed": e["acc"],
                "wall_s_mean": round(statistics.fmean(e["wall"]), 2), "wall_s_per_seed": [round(w, 2) for w in
                                                                                           e["wall"]]}
               for (m, target), e in rows.items()]
    # Training time behind every number (each seed's dense run and IMP rounds once, plus every other method's own
    # work): with cached results, this process's wall_s alone would hide the runs that filled the cache.
    dense_total = sum(tickets[s][0].metrics["wall_s"] for s in seeds)
    imp_total = sum(t.metrics["wall_s"] for s in seeds for t in tickets[s].values())
    shared = {m: len(TARGETS) * dense_total for m in ("oneshot", "oneshot_global", "bip_sgd", "bip_mrbo")}
    others = sum(sum(e["wall"]) for (m, _), e in rows.items() if m != "imp") - sum(shared.values())
    payload = {"results": results, "wall_s": round(time.perf_counter() - start, 1),
               "compute_s": round(imp_total + others, 1), "machine": machine(),
               "load_average": [round(v, 2) for v in os.getloadavg()], "seeds": args.seeds,
               "dense_test_acc": report["dense_test_acc"], "floors": floors(results),
               "bip": {"common": common, "optimizers": BIP}, "imp_run_dir": str(run)}
    if args.quick:
        print(save_json(out / "bip_mnist5k_quick.json", payload))
        return
    write("bip_mnist5k", payload)
    plot(results, payload["dense_test_acc"], RESULTS / "bip_mnist5k.png")
    print(payload["floors"])


def floors(results: list[dict]) -> dict[str, bool]:
    get = {(r["method"], r["target_density"]): r for r in results}
    out = {}
    for bip in ("bip_sgd", "bip_mrbo"):
        for t in TARGETS:
            b, imp = get[(bip, t)], get[("imp", t)]
            out[f"{bip}_{t}_acc_ge_imp_minus_0.005"] = at_least(b["test_acc_mean"], imp["test_acc_mean"] - 0.005)
            ratio = 0.5 if t == 0.2 else 1 / 3
            out[f"{bip}_{t}_wall_le_{ratio:.2f}_imp"] = b["wall_s_mean"] <= ratio * imp["wall_s_mean"]
        best_oneshot = max(get[(m, 0.02)]["test_acc_mean"] for m in ("oneshot", "oneshot_global"))
        out[f"{bip}_0.02_acc_ge_oneshot_plus_0.005"] = at_least(get[(bip, 0.02)]["test_acc_mean"], best_oneshot + 0.005)
    return out


def plot(results: list[dict], dense: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for m in sorted({r["method"] for r in results}):
        pts = sorted((r["density"], r["test_acc_mean"], r["wall_s_mean"]) for r in results if r["method"] == m)
        axes[0].plot([100 * p[0] for p in pts], [p[1] for p in pts], marker="o", label=m)
        axes[1].plot([100 * p[0] for p in pts], [p[2] for p in pts], marker="o", label=m)
    axes[0].axhline(dense, color="grey", ls=":", label=f"dense ({dense:.3f})")
    for ax, ylabel in zip(axes, ("test accuracy (mean of seeds)", "time to the ticket (s)"), strict=True):
        ax.set_xscale("log")
        ax.set_xticks([100 * t for t in TARGETS], [f"{100 * t:g}" for t in TARGETS])
        ax.minorticks_off()
        ax.invert_xaxis()
        ax.set_xlabel("weights remaining (%)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[1].set_yscale("log")
    fig.suptitle("LeNet-300-100 on mnist5k: BiP vs IMP, one-shot magnitude, GraSP")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
