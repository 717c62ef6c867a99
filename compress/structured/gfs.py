"""Greedy forward selection (Ye, Gong, Nie, Zhou, Klivans, Liu, "Good Subnetworks Provably Exist: Pruning via
Greedy Forward Selection", ICML 2020).

Layer by layer from the input, on a trained network: the layer starts empty and, one step at a time, the unit
that most lowers the loss on a fresh training minibatch is added, among `candidates` units drawn at random
from those not selected yet. The layer's output is the uniform average of the selected units rescaled by the
width, i.e. each selected unit is multiplied by n / |S| (n units in the layer): with every unit selected the
network is the original one. A layer stops at the target width (or, with `top1_tol`, once training accuracy
recovers). The scale is folded into the next layers' weights (or, with `rescale` off, dropped: the kept units
keep their trained scale), the layer is physically shrunk, and the whole network is finetuned briefly; at the
end the shrunk network is finetuned in full.

As in the reference code (lushleaf/Network-Pruning-Greedy-Forward-Selection, mobile2_prune.py): candidates are
sampled without replacement among unselected units, losses are measured in eval mode (BatchNorm running
statistics), and the gate sits after the unit's activation.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import torch
from torch import nn

from compress.data import Dataset
from compress.models import ModelSpec
from compress.structured.candidates import candidate_scores, supports
from compress.structured.rescale import fixed_multipliers
from compress.structured.result import (
    StructuredResult,
    chosen_groups,
    clone,
    eval_subset,
    minibatches,
    state,
    target_counts,
)
from compress.structured.settings import GfsSettings
from compress.structured.shrink import scale_units, shrink, structured_spec
from compress.structured.suffix import SuffixRunner
from compress.structured.units import UnitGroup, group_by_name, unit_groups
from compress.train import train


def uniform_gates(size: int, selected: list[int], candidates: list[int]) -> torch.Tensor:
    """Gate rows (len(candidates), size): selected units plus one candidate, each scaled by size / (|S| + 1)."""
    gates = torch.zeros(len(candidates), size)
    if selected:
        gates[:, selected] = 1.0
    gates[torch.arange(len(candidates)), candidates] = 1.0
    return gates * (size / (len(selected) + 1))


@torch.no_grad()
def select_units(model: nn.Module, group: UnitGroup, data: Dataset, settings: GfsSettings, target: int,
                 gen: torch.Generator, eval_xy: tuple[torch.Tensor, torch.Tensor]) -> tuple[list[int], dict[str, Any]]:
    """The units GFS keeps in `group` (indices, in selection order) and a log of the layer's selection."""
    was = model.training
    model.eval()
    runner = SuffixRunner(model, group)
    fast = supports(runner)
    x_eval, y_eval = eval_xy
    full_env = runner.prefix(x_eval)
    ones = torch.ones(1, group.size)
    _, start_acc = runner.scores(full_env, ones, y_eval, settings.max_chunk)
    selected: list[int] = []
    remaining = torch.ones(group.size, dtype=torch.bool)
    stream = minibatches(data, settings.batch_size, gen)
    losses: list[float] = []
    stopped = "width"
    while len(selected) < target:
        x, y = next(stream)
        pool = remaining.nonzero().flatten()
        cands = pool[torch.randperm(len(pool), generator=gen)[: settings.candidates]].tolist()
        env = runner.prefix(x)
        if fast:
            loss, acc = candidate_scores(runner, env, selected, cands, y, settings.max_chunk)
        else:
            loss, acc = runner.scores(env, uniform_gates(group.size, selected, cands), y, settings.max_chunk)
        best = int(torch.argmin(loss))
        selected.append(cands[best])
        remaining[cands[best]] = False
        losses.append(float(loss[best]))
        if settings.top1_tol > 0 and float(acc[best]) >= (1 - settings.skip_eval) * float(start_acc):
            gate = uniform_gates(group.size, selected[:-1], selected[-1:])
            _, now = runner.scores(full_env, gate, y_eval, settings.max_chunk)
            if float(now) >= (1 - settings.top1_tol) * float(start_acc):
                stopped = "accuracy"
                break
    end_gate = uniform_gates(group.size, selected[:-1], selected[-1:])
    _, end_acc = runner.scores(full_env, end_gate, y_eval, settings.max_chunk)
    model.train(was)
    return selected, {"layer": group.name, "units": group.size, "kept": len(selected), "stopped": stopped,
                      "train_acc_before": float(start_acc), "train_acc_selected": float(end_acc),
                      "step_losses": [round(v, 5) for v in losses]}


def rescale_selected(model: nn.Module, group: UnitGroup, selected: list[int]) -> float:
    """Multiply the selected units of `group` by n / |S| (folded into their consumers' weights) and zero the
    others, the function GFS scored; the factor n / |S|."""
    factor = group.size / len(selected)
    scale = torch.zeros(group.size)
    scale[selected] = factor
    scale_units(model, group, scale)
    return factor


def gfs(model: nn.Module, spec: ModelSpec, data: Dataset, settings: GfsSettings, seed: int = 0) -> StructuredResult:
    """Greedy forward selection on the trained `model` (built from `spec`; left unchanged): every chosen layer
    selected, folded, shrunk and briefly finetuned in forward order, then the shrunk network finetuned."""
    t0 = time.perf_counter()
    net = clone(model)
    shape = data.input_shape
    groups = chosen_groups(net, shape, settings.layers, need_gate=True)
    names, targets = [g.name for g in groups], target_counts(groups, settings.keep)
    gen = torch.Generator().manual_seed(seed)
    eval_xy = eval_subset(data, settings.eval_samples, seed)
    keep: dict[str, list[int]] = {}
    factors: dict[str, float] = {}
    log: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        t_layer = time.perf_counter()
        group = group_by_name(unit_groups(net, shape, include_coupled=True), name)  # consumers move as layers shrink
        selected, entry = select_units(net, group, data, settings, targets[name], gen, eval_xy)
        if settings.rescale:
            factors[name] = rescale_selected(net, group, selected)
        shrink(net, {name: selected}, shape)
        keep[name] = sorted(selected)
        entry["select_s"] = round(time.perf_counter() - t_layer, 3)
        with _multipliers(net, shape, factors, settings):
            r = train(net, data, settings.layer_train, seed=seed * 7919 + i + 1)
        entry.update({"val_acc_after_finetune": r.val_acc, "finetune_s": round(r.wall_s, 3)})
        log.append(entry)
    start = state(net)
    select_s = time.perf_counter() - t0
    with _multipliers(net, shape, factors, settings):
        r = train(net, data, settings.finetune, seed=seed)
    metrics = {**r.metrics(), "select_and_layer_train_s": round(select_s, 3),
               "finetune_s": round(r.wall_s, 3), "wall_s": round(time.perf_counter() - t0, 3),
               "widths": {n: len(k) for n, k in keep.items()}}
    return StructuredResult("gfs", structured_spec(spec, keep), net, start, keep, metrics, log)


def _multipliers(net: nn.Module, shape: tuple[int, ...], factors: dict[str, float], settings: GfsSettings):
    return fixed_multipliers(net, shape, factors) if settings.train_multiplier else contextlib.nullcontext()


__all__ = ["gfs", "rescale_selected", "select_units", "uniform_gates"]
