"""Cost of masked training steps: LeNet-300-100 on mnist5k, batch 60, samples/s with and without a mask.

Three loops in one process, repeated in turn (so load drifts hit all alike), median throughput:
- `unmasked`: no mask;
- `masked`: the loop's masking (gradients only, one fused `_foreach_mul_`);
- `legacy_masked`: the same plus re-masking the weights and every optimizer state tensor after each step
  (what the loop did before), to show what the change saves.
Target: masked >= 0.9x unmasked. Writes benchmarks/results/masked_step.json.
Usage: python -m benchmarks.masked_step [--threads 2] [--iterations 1500] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from benchmarks.common import machine, write
from compress import data as datasets
from compress import models
from compress.mask import Mask
from compress.train import TrainHparams, train
from compress.train.callbacks import Callback, LoopState
from compress.train.masking import remask


class _LegacyRemask(Callback):
    """The previous loop's extra work: weights and optimizer state multiplied by the mask after each step."""

    def after_step(self, state: LoopState) -> None:
        remask(state.optimizer, state.masked)


def _run(kind: str, ds: datasets.Dataset, hp: TrainHparams, spec: models.ModelSpec) -> tuple[float, float]:
    """(samples per wall second, samples per CPU second of this process) of one training."""
    model = models.build(spec, seed=0)
    mask = None
    if kind != "unmasked":
        g = torch.Generator().manual_seed(1)
        mask = Mask({n: torch.rand(w.shape, generator=g) < 0.2 for n, w in models.prunable(model).items()})
    cpu = time.process_time()
    r = train(model, ds, hp, mask=mask, seed=0, callbacks=[_LegacyRemask()] if kind == "legacy_masked" else ())
    samples = hp.iterations * hp.batch_size
    return samples / r.wall_s, samples / (time.process_time() - cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=1500)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--optimizer", default="adam")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = datasets.get("mnist5k")
    spec = models.ModelSpec("lenet_300_100", ds.input_shape, ds.num_classes)
    hp = TrainHparams(optimizer=args.optimizer, batch_size=60, iterations=args.iterations,
                      eval_every=args.iterations)
    kinds = ("unmasked", "masked", "legacy_masked")
    _run("masked", ds, hp.replace(iterations=100, eval_every=100), spec)  # warm-up
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    cpu_rates: dict[str, list[float]] = {k: [] for k in kinds}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for k in kinds:
            wall, cpu = _run(k, ds, hp, spec)
            rates[k].append(wall)
            cpu_rates[k].append(cpu)
    med = {k: statistics.median(v) for k, v in rates.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu_rates.items()}
    payload = {
        "model": "lenet_300_100", "dataset": "mnist5k", "batch_size": 60, "optimizer": args.optimizer,
        "iterations": args.iterations, "repeats": args.repeats, "mask_density": 0.2,
        "samples_per_s": {k: round(v, 1) for k, v in med.items()},
        "samples_per_s_per_repeat": {k: [round(x, 1) for x in v] for k, v in rates.items()},
        "masked_over_unmasked": round(med["masked"] / med["unmasked"], 3),
        "legacy_over_unmasked": round(med["legacy_masked"] / med["unmasked"], 3),
        # Per CPU second of this process: less sensitive to other processes than wall time (not to spinning
        # threads under oversubscription, which is why --threads 1 gives the steadier figure on a busy box).
        "cpu_samples_per_s": {k: round(v, 1) for k, v in cpu_med.items()},
        "cpu_masked_over_unmasked": round(cpu_med["masked"] / cpu_med["unmasked"], 3),
        "cpu_legacy_over_unmasked": round(cpu_med["legacy_masked"] / cpu_med["unmasked"], 3),
        "floors": {"masked_ge_0.9x_unmasked": med["masked"] / med["unmasked"] >= 0.9},
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "machine": machine(),
    }
    write("masked_step", payload)
    print({k: payload[k] for k in ("samples_per_s", "masked_over_unmasked", "legacy_over_unmasked",
                                   "cpu_masked_over_unmasked", "cpu_legacy_over_unmasked")})


if __name__ == "__main__":
    main()
