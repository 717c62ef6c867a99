"""What every structured method returns: the shrunk, finetuned network and everything needed to save it."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from compress.data import Dataset, batches
from compress.errors import UsageError
from compress.mask import Mask
from compress.models import ModelSpec
from compress.structured.units import UnitGroup, gateable, kept_count, unit_groups
from compress.ticket import Ticket


@dataclass
class StructuredResult:
    """`model` is built by `spec` (the `shrink` transform, or a width-multiplied model for small_dense)."""

    method: str
    spec: ModelSpec
    model: nn.Module
    start: dict[str, torch.Tensor]  # the shrunk weights the final finetune started from (the ticket's init)
    keep: dict[str, list[int]]  # group -> kept unit indices of the large network ({} for small_dense)
    metrics: dict[str, Any]
    layers: list[dict[str, Any]] = field(default_factory=list)  # per-layer log (GFS)

    def ticket(self, meta: dict[str, Any] | None = None) -> Ticket:
        """A normal `Ticket` (dense mask over the shrunk weights) that `Ticket.load(dir).model()` rebuilds.

        `meta` (what defines it: method, kept units, ...) holds no timings; what was measured (accuracy, wall
        times, the per-layer selection log) goes to the ticket's `metrics`."""
        final = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        info = {"method": self.method, "structured": True, "keep": self.keep, **(meta or {})}
        measured = {**self.metrics, **({"selection": self.layers} if self.layers else {})}
        return Ticket(self.spec, self.start, Mask.ones_like(self.model), final, meta=info, metrics=measured)


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def chosen_groups(model: nn.Module, input_shape: tuple[int, ...], layers: Sequence[str],
                  need_gate: bool = False) -> list[UnitGroup]:
    """The unit groups a method works on, in forward order: `layers` by name, or every uncoupled hidden group."""
    groups = unit_groups(model, input_shape, include_coupled=bool(layers))
    if layers:
        wanted = set(layers)
        picked = [g for g in groups if wanted & {g.name, *g.producers}]
        found = {n for g in picked for n in (g.name, *g.producers)}
        missing = sorted(wanted - found)
        if missing:
            raise UsageError(f"layer(s) {', '.join(missing)} have no removable units. Layers with units: "
                             f"{', '.join(g.name for g in groups) or 'none'} (the output layer's units are the "
                             "classes and are never removed).")
        groups = picked
    if need_gate:
        bad = [(g.name, why) for g in groups if (why := gateable(model, g))]
        if bad:
            raise UsageError("greedy forward selection cannot gate the units of " +
                             "; ".join(f"'{n}' ({why})" for n, why in bad) + ". Choose other layers.")
    if not groups:
        raise UsageError(f"{type(model).__name__} has no hidden layer with removable units.")
    return groups


def target_counts(groups: Sequence[UnitGroup], keep: float) -> dict[str, int]:
    return {g.name: kept_count(g.size, keep) for g in groups}


def eval_subset(data: Dataset, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random subset of the training set (the reference code's "eval train" loader)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data.y_train), generator=g)[:n]
    return data.x_train[idx], data.y_train[idx]


def minibatches(data: Dataset, batch_size: int, gen: torch.Generator):
    """An endless stream of shuffled training minibatches (a fresh one per greedy step)."""
    while True:
        yield from batches(data.x_train, data.y_train, batch_size, gen)


def clone(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model)


__all__ = ["StructuredResult", "chosen_groups", "clone", "eval_subset", "minibatches", "state", "target_counts"]
