"""L1-norm filter pruning: Li, Kadav, Durdanovic, Samet, Graf, "Pruning Filters for Efficient ConvNets"
(ICLR 2017). Each layer keeps the filters (conv output channels; rows of a linear layer) with the largest
sum of absolute weights, all layers one shot, then the network is retrained."""

from __future__ import annotations

import torch
from torch import nn

from compress.data import Dataset
from compress.models import ModelSpec
from compress.structured.oneshot import one_shot
from compress.structured.result import StructuredResult
from compress.structured.settings import OneShotSettings
from compress.structured.units import UnitGroup


def l1_scores(model: nn.Module, group: UnitGroup) -> torch.Tensor:
    """Sum of |w| over each unit's filter; a coupled group (residual stream) sums its producers' norms."""
    total = torch.zeros(group.size)
    for name in group.producers:
        w = model.get_submodule(name).weight.detach()
        total += w.abs().reshape(w.shape[0], -1).sum(1)
    return total


def l1_choice(model: nn.Module, group: UnitGroup, k: int, gen: torch.Generator | None = None) -> list[int]:
    """The `k` units of largest L1 norm (ties: lower index first)."""
    return sorted(torch.argsort(-l1_scores(model, group), stable=True)[:k].tolist())


def l1(model: nn.Module, spec: ModelSpec, data: Dataset, settings: OneShotSettings, seed: int = 0) -> StructuredResult:
    """L1-norm filter pruning of the trained `model` to `settings.keep` per layer, then finetuning."""
    return one_shot("l1", l1_choice, model, spec, data, settings, seed)


__all__ = ["l1", "l1_choice", "l1_scores"]
