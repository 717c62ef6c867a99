"""How GFS hands a selected layer on: does the n/|S| rescaling help or hurt, on Conv-4 and on LeNet-300-100?

GFS scores units with the layer output as the uniform average of the selected units rescaled by the width
(x n/|S|). Afterwards the network is finetuned, and there are three ways to carry that factor (GfsSettings):
- `multiplier` (the default, the reference code's mask layer): a fixed multiplier before the next layer while
  finetuning, folded into the weights afterwards;
- `folded` (`--no-train-multiplier`): folded into the next layer's weights before finetuning (same function);
- `no_rescale` (`--no-rescale`): dropped; the kept units keep their trained scale.
The structured_mnist5k protocol (mnist5k, Conv-4 at width 0.5 for 8 epochs, LeNet for 20, 3 seeds, 25% of the
units kept, GFS's 1-epoch finetune after each layer, the final finetune with the dense recipe), with random
units (as many epochs in all) for reference. Nothing here changes a default; the result is written to
benchmarks/results/structured_gfs_rescale.json. Run alone: python -m benchmarks.structured_gfs_rescale
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.common import Run, arguments

MODES = {"multiplier": {}, "folded": {"train_multiplier": False}, "no_rescale": {"rescale": False}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--keep", type=float, default=0.25)
    ap.add_argument("--conv-width", type=float, default=0.5)
    ap.add_argument("--lenet-epochs", type=float, default=20)
    ap.add_argument("--conv-epochs", type=float, default=8)
    ap.add_argument("--threads", type=int, default=1)
    args = arguments(ap, argv)
    run = Run("structured_gfs_rescale", ap, args)
    import torch

    from benchmarks.structured_mnist5k import LR, run_method
    from compress import data as datasets
    from compress.models import ModelSpec, build
    from compress.train import TrainHparams, train

    torch.set_num_threads(args.threads)
    data = datasets.get("mnist5k")
    rows, dense = [], {}
    nets = (("conv4", args.conv_width, args.conv_epochs), ("lenet_300_100", 1.0, args.lenet_epochs))
    for name, width, epochs in nets:
        spec = ModelSpec(name, data.input_shape, data.num_classes, width)
        hp = TrainHparams(epochs=epochs, lr=LR[name], batch_size=60, eval_every=100)
        acc: dict[str, list[float]] = {}
        for seed in range(args.seeds):
            net = build(spec, seed=seed)
            acc.setdefault("dense", []).append(train(net, data, hp, seed=seed).test_acc)
            for mode, kw in MODES.items():
                r = run_method("gfs", net, spec, data, args.keep, hp, seed, **kw)
                acc.setdefault(f"gfs/{mode}", []).append(r.metrics["test_acc"])
            r = run_method("random", net, spec, data, args.keep, hp, seed)
            acc.setdefault("random/-", []).append(r.metrics["test_acc"])
            print(f"{name} seed {seed} done ({time.perf_counter() - run.start:.0f} s)", flush=True)
        dense[name] = {"test_acc_mean": statistics.fmean(acc.pop("dense")), "width": width, "epochs": epochs}
        rows += [{"model": name, "method": key.split("/")[0], "mode": key.split("/")[1], "keep": args.keep,
                  "test_acc_mean": statistics.fmean(v), "test_acc_per_seed": v} for key, v in acc.items()]
    run.write({"dense": dense, "results": rows, "modes": list(MODES),
               "note": "GFS with the n/|S| factor as a fixed multiplier (default), folded into the next layer, or "
                       "dropped; random units for reference; same dense nets and epochs in all."})


if __name__ == "__main__":
    main()
