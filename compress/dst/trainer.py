"""One dynamic sparse training (RigL, SET or static sparse; Evci et al., ICML 2020) -> a Ticket and a history.

The network starts at the target sparsity with a random mask of ERK or uniform layer densities and is
trained once; RigL and SET change the mask on RigL's schedule (compress.dst.update). The ticket holds
the dense initial weights, the final mask and the trained weights, so finetune, binarize and every
exporter take it unchanged. The history has the per-layer density after every update, the dropped and
grown counts, the mask-change curve (fraction of the final mask present at each update) and the FLOPs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from compress.data import Dataset
from compress.dst import rigl, static
from compress.dst import set as set_rule
from compress.dst.densities import layer_counts, random_mask
from compress.dst.flops import flops
from compress.dst.schedule import end_iteration, update_iterations
from compress.dst.settings import DstHparams
from compress.dst.update import DynamicMask, mask_change_curve
from compress.models import ModelSpec, build
from compress.ticket import Ticket
from compress.train import train


@dataclass
class DstResult:
    """The ticket (dense init, final mask, trained weights, meta) and the history of one sparse training."""

    ticket: Ticket
    history: dict[str, Any] = field(default_factory=dict)


RULES: dict[str, ModuleType] = {"rigl": rigl, "set": set_rule, "static": static}


def mask_seed(seed: int) -> int:
    """Seed of the random starting mask: its own stream, apart from the init and the data order."""
    return 1_000_003 * (seed + 1) + 17


def run(spec: ModelSpec, data: Dataset, hp: DstHparams, seed: int = 0, dense_iterations: int | None = None,
        checkpoint_dir: str | Path | None = None, checkpoint_every: int = 0) -> DstResult:
    """Train `spec` on `data` sparsely with `hp.method`; return its ticket and history.

    `dense_iterations` is the dense training length the FLOPs are relative to (default: this run's length;
    pass the 1x length for a run with twice the epochs). With `checkpoint_dir` the training checkpoints
    every `checkpoint_every` iterations and resumes from there after a crash.
    """
    start = time.perf_counter()
    model = build(spec, seed=seed)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    counts = layer_counts(model, hp.sparsity, hp.distribution, hp.dense_output)
    mask = random_mask(model, counts, mask_seed(seed))
    total = hp.train.total_iterations(len(data.y_train))
    t_end_iter = end_iteration(hp.t_end, total)
    grow = RULES[hp.method]
    updater = DynamicMask(grow, hp.delta_t, hp.alpha, t_end_iter, seed=mask_seed(seed) + 1,
                          identity={"settings": hp.to_dict(), "model": spec.to_dict()})
    r = train(model, data, hp.train, mask=mask, seed=seed, callbacks=[updater], checkpoint_dir=checkpoint_dir,
              checkpoint_every=checkpoint_every)
    final_mask = r.mask if r.mask is not None else mask
    sparse_layers = [n for n, m in mask.items() if not bool(m.all())]
    n_updates = len(update_iterations(total, hp.delta_t, t_end_iter)) if grow.grow_scores is not None else 0
    cost = flops(model, spec.input_shape, final_mask, total, n_updates, grow.NEEDS_GRADIENT, dense_iterations)
    history = {
        "updates": updater.history,
        "mask_change": {"iterations": [0] + [h["iteration"] for h in updater.history],
                        "fraction_of_final_present": mask_change_curve(mask, updater.packed, final_mask,
                                                                        sparse_layers)},
        "flops": cost, "iterations": total, "t_end_iteration": t_end_iter, "curve": r.curve,
    }
    meta = {"finder": hp.method, "method": hp.method, "digest": hp.digest(), "seed": seed, "dataset": data.name,
            "settings": hp.to_dict(), "metrics": {**r.metrics(), "wall_s": round(time.perf_counter() - start, 3)},
            "layer_density": final_mask.layer_density(), "train_flops_ratio": cost["train_flops_ratio"],
            "inference_flops_ratio": cost["inference_flops_ratio"], "init": "dense initial weights (before masking)"}
    final = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return DstResult(Ticket(spec, init, final_mask, final, meta=meta), history)
