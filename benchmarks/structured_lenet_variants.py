"""Does one GFS setting explain why GFS does not beat random units on LeNet-300-100 (structured_mnist5k)?

The structured_mnist5k protocol for LeNet-300-100 on mnist5k (dense nets trained 20 epochs, Adam 1.2e-3, 3 seeds;
every method trains the small net for the same epochs in all), keeping 50% and 25% of the hidden units: GFS
as benchmarked there, then with one setting changed at a time, and random units and L1-norm for each finetune
schedule:
- `as_benchmarked`: constant lr, fixed n/|S| multiplier while finetuning, 1-epoch finetune after each layer,
  50 candidates per step on a 64-sample minibatch;
- `cosine`: cosine decay of the lr in every finetune (the reference code's finetune schedule), for GFS and the
  controls alike;
- `no_multiplier`: the n/|S| factor folded into the next layer's weights before finetuning;
- `no_rescale`: no n/|S| factor at all once a layer is selected (the kept units at their trained scale);
- `layer_lr_0.1x`: the finetune after each layer at a tenth of the lr;
- `candidates_200`, `select_batch_128`: four times the candidates per step; the reference code's minibatch.
And a finetune-budget sweep (`budgets`): GFS as benchmarked, random units and L1-norm (constant lr) with a final
finetune of 0.5, 1, 2 and 5 epochs instead of the dense training's 20 (the controls again get GFS's per-layer
epochs on top, as in structured_mnist5k): does GFS's better selection (its per-layer log) show when the finetune
is short, and how fast does finetuning close the gap? Plus the three at the full budget with every finetune
(GFS's per-layer ones included) at a tenth of the dense lr, which moves a trained start point less.
And the first hidden layer alone (`first_layer`): each method's choice of that layer's units in the trained net,
validation loss and accuracy before any training and after the 1-epoch finetune GFS gives it (GFS as it hands the
layer on, x n/|S| with the fixed multiplier, and its choice without that rescaling): how good is the selection
itself, and what does the first finetune leave of it?
Nothing here changes a default; it is a diagnostic of the structured_mnist5k result, written to
benchmarks/results/structured_lenet_variants.json. Run alone: python -m benchmarks.structured_lenet_variants
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.common import Run, arguments

KEEPS = (0.5, 0.25)
BUDGETS = (0.5, 1.0, 2.0, 5.0)
VARIANTS = ("as_benchmarked", "cosine", "no_multiplier", "no_rescale", "layer_lr_0.1x", "candidates_200",
            "select_batch_128")


def gfs_settings(variant: str, keep: float, hp, layer_epochs: float):
    from compress.structured.settings import GfsSettings

    layer = hp.replace(epochs=layer_epochs)
    kw = {"keep": keep, "layer_train": layer, "finetune": hp}
    if variant == "cosine":
        kw.update(layer_train=layer.replace(schedule="cosine"), finetune=hp.replace(schedule="cosine"))
    elif variant == "no_multiplier":
        kw["train_multiplier"] = False
    elif variant == "no_rescale":
        kw["rescale"] = False
    elif variant == "layer_lr_0.1x":
        kw["layer_train"] = layer.replace(lr=hp.lr / 10)
    elif variant == "candidates_200":
        kw["candidates"] = 200
    elif variant == "select_batch_128":
        kw["batch_size"] = 128
    return GfsSettings(**kw)


def first_layer(dense, data, keep: float, hp, seed: int) -> dict[str, dict[str, float]]:
    """Validation (loss, accuracy) of the dense net with only its first hidden layer pruned, per choice of units,
    before training and after GFS's 1-epoch layer finetune (`hp`; seeded as GFS seeds its first one)."""
    import contextlib

    import torch

    from compress.structured.gfs import rescale_selected, select_units
    from compress.structured.l1 import l1_choice
    from compress.structured.random_units import random_choice
    from compress.structured.rescale import fixed_multipliers
    from compress.structured.result import chosen_groups, clone, eval_subset, target_counts
    from compress.structured.settings import GfsSettings
    from compress.structured.shrink import shrink
    from compress.structured.units import group_by_name, unit_groups
    from compress.train import evaluate, train

    shape = data.input_shape
    name = chosen_groups(dense, shape, (), need_gate=True)[0].name
    group = group_by_name(unit_groups(dense, shape, include_coupled=True), name)
    k = target_counts([group], keep)[name]
    gfs_units, _ = select_units(clone(dense), group, data, GfsSettings(keep=keep), k,
                                torch.Generator().manual_seed(seed), eval_subset(data, 1000, seed))
    choices = {"gfs": gfs_units, "gfs_unscaled": gfs_units,
               "random": random_choice(dense, group, k, torch.Generator().manual_seed(seed)),
               "l1": l1_choice(dense, group, k)}
    out = {}
    for method, units in choices.items():
        net, factor = clone(dense), group.size / len(units)
        if method == "gfs":
            rescale_selected(net, group, units)
        shrink(net, {name: sorted(units)}, shape)
        before = evaluate(net, data.x_val, data.y_val)
        multiplier = fixed_multipliers(net, shape, {name: factor}) if method == "gfs" else contextlib.nullcontext()
        with multiplier:
            train(net, data, hp, seed=seed * 7919 + 1)
        after = evaluate(net, data.x_val, data.y_val)
        out[method] = {"val_loss_before": before[0], "val_acc_before": before[1],
                       "val_loss_after": after[0], "val_acc_after": after[1]}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=float, default=20, help="dense training and final finetune epochs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--budgets", type=float, nargs="*", default=list(BUDGETS),
                    help="final finetune epochs of the budget sweep (empty: skip it)")
    ap.add_argument("--low-lr", type=float, default=0.1,
                    help="lr factor of the full-budget run of the sweep (0: skip it)")
    args = arguments(ap, argv)
    run = Run("structured_lenet_variants", ap, args)
    import torch

    from benchmarks.structured_mnist5k import LAYER_EPOCHS, LR, run_method
    from compress import data as datasets
    from compress.models import ModelSpec, build
    from compress.structured.gfs import gfs
    from compress.train import TrainHparams, train

    torch.set_num_threads(args.threads)
    data = datasets.get("mnist5k")
    spec = ModelSpec("lenet_300_100", data.input_shape, data.num_classes)
    hp = TrainHparams(epochs=args.epochs, lr=LR["lenet_300_100"], batch_size=60, eval_every=100)
    acc: dict[str, dict[float, list[float]]] = {}
    dense_acc = []
    budget: dict[tuple[str, float, float, float], list[float]] = {}
    first: dict[tuple[str, float], dict[str, list[float]]] = {}
    for seed in range(args.seeds):
        dense = build(spec, seed=seed)
        dense_acc.append(train(dense, data, hp, seed=seed).test_acc)
        for keep in KEEPS:
            for variant in VARIANTS:
                r = gfs(dense, spec, data, gfs_settings(variant, keep, hp, LAYER_EPOCHS), seed)
                acc.setdefault(f"gfs/{variant}", {}).setdefault(keep, []).append(r.metrics["test_acc"])
            for schedule in ("constant", "cosine"):
                for name in ("random", "l1"):
                    r = run_method(name, dense, spec, data, keep, hp.replace(schedule=schedule), seed)
                    acc.setdefault(f"{name}/{schedule}", {}).setdefault(keep, []).append(r.metrics["test_acc"])
            for method, v in first_layer(dense, data, keep, hp.replace(epochs=LAYER_EPOCHS), seed).items():
                for key, value in v.items():
                    first.setdefault((method, keep), {}).setdefault(key, []).append(value)
            sweep = [(e, 1.0) for e in args.budgets] + ([(args.epochs, args.low_lr)] if args.low_lr else [])
            for epochs, factor in sweep:
                for name in ("gfs", "random", "l1"):
                    r = run_method(name, dense, spec, data, keep, hp.replace(epochs=epochs, lr=hp.lr * factor), seed)
                    budget.setdefault((name, epochs, factor, keep), []).append(r.metrics["test_acc"])
        print(f"seed {seed} done ({time.perf_counter() - run.start:.0f} s)", flush=True)
    rows = [{"method": key.split("/")[0], "variant": key.split("/")[1], "keep": keep,
             "test_acc_mean": statistics.fmean(v), "test_acc_per_seed": v}
            for key, by_keep in acc.items() for keep, v in by_keep.items()]
    run.write({"dense_test_acc_mean": statistics.fmean(dense_acc), "dense_test_acc_per_seed": dense_acc,
               "results": rows, "variants": list(VARIANTS),
               "budgets": [{"method": name, "final_finetune_epochs": epochs, "lr_factor": factor, "keep": keep,
                            "test_acc_mean": statistics.fmean(v), "test_acc_per_seed": v}
                           for (name, epochs, factor, keep), v in budget.items()],
               "first_layer": [{"method": name, "keep": keep,
                                **{f"{k}_mean": statistics.fmean(v) for k, v in m.items()},
                                **{f"{k}_per_seed": v for k, v in m.items()}} for (name, keep), m in first.items()],
               "note": "GFS with one setting changed at a time; random units and L1-norm with the constant (as "
                       "benchmarked) and the cosine finetune schedule; same dense nets and epochs in all."})


if __name__ == "__main__":
    main()
