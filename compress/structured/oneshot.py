"""One-shot structured pruning of a trained network, then finetuning: the driver shared by the baselines
greedy forward selection must beat (`l1`, `random_units`). Each unit group keeps `keep` of its units, all
groups at once (Li et al., ICLR 2017, prune all layers one shot and retrain)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from compress.data import Dataset
from compress.models import ModelSpec
from compress.structured.result import StructuredResult, chosen_groups, state, target_counts
from compress.structured.settings import OneShotSettings
from compress.structured.shrink import shrunk_copy, structured_spec
from compress.structured.units import UnitGroup
from compress.train import train

Chooser = Callable[[nn.Module, UnitGroup, int, torch.Generator], list[int]]


def one_shot(method: str, choose: Chooser, model: nn.Module, spec: ModelSpec, data: Dataset,
             settings: OneShotSettings, seed: int = 0) -> StructuredResult:
    """Keep `choose(model, group, k, gen)` units of every chosen group of the trained `model` (left unchanged),
    shrink it and finetune it."""
    t0 = time.perf_counter()
    groups = chosen_groups(model, data.input_shape, settings.layers)
    counts = target_counts(groups, settings.keep)
    gen = torch.Generator().manual_seed(seed)
    keep = {g.name: sorted(choose(model, g, counts[g.name], gen)) for g in groups}
    net = shrunk_copy(model, keep, data.input_shape)
    start = state(net)
    r = train(net, data, settings.finetune, seed=seed)
    metrics = {**r.metrics(), "wall_s": round(time.perf_counter() - t0, 3),
               "widths": {n: len(k) for n, k in keep.items()}}
    return StructuredResult(method, structured_spec(spec, keep), net, start, keep, metrics)


__all__ = ["Chooser", "one_shot"]
