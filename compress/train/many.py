"""Train many networks of one architecture: stacked where that is faster and fits, else one after another.

`train_many(members, data, hp, stacked=True)` returns what `train` would return for each member. `plan`
decides, before anything trains, how the members are grouped:
- not at all (each alone) when stacking is off, when there is one member, when the model cannot be stacked
  exactly (compress.train.stack says why), or on a CPU when one member's training step is already large
  (forward FLOPs per step above `CPU_STEP_FLOPS`: a conv net on 28x28 images fills the cores alone, and a
  grouped convolution is slower than separate ones there); on a GPU small members always underuse it;
- in groups no larger than what fits in half the free memory (weights, gradients, optimizer state and mask
  of every member, plus its activations at the training batch and the evaluation chunk), with a notice when
  the members had to be split, and alone with a notice when even two do not fit.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from compress.data import Dataset
from compress.train.hparams import TrainHparams
from compress.train.loop import TrainResult, train
from compress.train.stacked import Member, train_stacked

log = logging.getLogger("lottery")
CPU_STEP_FLOPS = 5e8  # forward FLOPs of one member's training step above which stacking stops paying on a CPU
MEMORY_SHARE = 0.5    # of the free memory the stacked members may take
EVAL_CHUNK = 1000


@dataclass
class Plan:
    groups: list[list[int]]  # member indices trained together (a group of one trains alone)
    notice: str = ""

    @property
    def stacked(self) -> bool:
        return any(len(g) > 1 for g in self.groups)


def plan(model: nn.Module, count: int, hp: TrainHparams, data: Dataset, stacked: bool = True) -> Plan:
    """How `count` trainings of `model`'s architecture are grouped (module docstring)."""
    alone = Plan([[i] for i in range(count)])
    if not stacked or count < 2:
        return alone
    from compress.train.stack import stack

    stackable, why = stack([model, model], data.x_train[:4])
    if stackable is None:
        return Plan(alone.groups, f"trained one after another: {why}")
    device = next(model.parameters()).device
    flops = step_flops(model, data, hp.batch_size)
    if device.type == "cpu" and flops > CPU_STEP_FLOPS:
        return Plan(alone.groups, f"trained one after another: one training step ({flops / 1e9:.2f} GFLOP forward) "
                                  "already fills this CPU")
    need, free = member_bytes(model, data, hp.batch_size), free_bytes(device)
    fit = int(MEMORY_SHARE * free // max(1, need))
    if fit < 2:
        return Plan(alone.groups, f"trained one after another: two stacked trainings need {2 * need / 2**20:.0f} MiB, "
                                  f"more than {MEMORY_SHARE:.0%} of the {free / 2**20:.0f} MiB free")
    n_groups = -(-count // fit)
    groups = [list(range(count))[g::n_groups] for g in range(n_groups)]
    groups = [sorted(g) for g in groups]
    notice = "" if n_groups == 1 else (f"stacked in {n_groups} groups of at most {fit} trainings (memory: "
                                       f"{need / 2**20:.0f} MiB each, {free / 2**20:.0f} MiB free)")
    return Plan(groups, notice)


def step_flops(model: nn.Module, data: Dataset, batch_size: int) -> float:
    """Forward FLOPs of one training batch of `model` (torch.utils.flop_counter on one sample, times the batch)."""
    from torch.utils.flop_counter import FlopCounterMode

    was = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(data.x_train[:1])
    model.train(was)
    return float(counter.get_total_flops()) * batch_size


def member_bytes(model: nn.Module, data: Dataset, batch_size: int) -> int:
    """Memory one stacked member takes: weights, gradient, two optimizer moments and the mask per parameter,
    plus the activations (and their gradients) of a training batch or one evaluation chunk."""
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    size += sum(b.numel() * b.element_size() for b in model.buffers())
    per_sample = [0]

    def count(_m: nn.Module, _i: object, out: object) -> None:
        if isinstance(out, torch.Tensor):
            per_sample[0] += out.numel() * out.element_size()

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(data.x_train[:1])
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return 5 * size + per_sample[0] * max(2 * batch_size, EVAL_CHUNK)


def free_bytes(device: torch.device) -> int:
    """Free memory on `device`: the GPU's free memory, or the machine's MemAvailable."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def train_many(members: Sequence[Member], data: Dataset, hp: TrainHparams, stacked: bool = True,
               on_eval: Callable[[int, int, dict[str, float]], None] | None = None) -> list[TrainResult]:
    """Train every member (in place) as `train` would; stacked per `plan`. Results in the members' order."""
    members = list(members)
    if not members:
        return []
    p = plan(members[0].model, len(members), hp, data, stacked)
    if p.notice:
        log.info("%d trainings %s", len(members), p.notice)
    results: list[TrainResult | None] = [None] * len(members)
    for group in p.groups:
        if len(group) == 1:
            m = members[group[0]]
            results[group[0]] = train(m.model, data, hp, mask=m.mask, seed=m.seed, snapshot_at=m.snapshot_at,
                                      on_eval=on_eval)
            continue
        for i, r in zip(group, train_stacked([members[i] for i in group], data, hp, on_eval), strict=True):
            results[i] = r
    return [r for r in results if r is not None]
