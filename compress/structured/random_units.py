"""Random structured pruning: each layer keeps a uniformly random set of units of the same size as the other
methods', then the network is finetuned. The control any unit-selection method must beat (as random masks
are for unstructured tickets, Ma et al., NeurIPS 2021)."""

from __future__ import annotations

import torch
from torch import nn

from compress.data import Dataset
from compress.models import ModelSpec
from compress.structured.oneshot import one_shot
from compress.structured.result import StructuredResult
from compress.structured.settings import OneShotSettings
from compress.structured.units import UnitGroup


def random_choice(model: nn.Module, group: UnitGroup, k: int, gen: torch.Generator) -> list[int]:
    return sorted(torch.randperm(group.size, generator=gen)[:k].tolist())


def random_units(model: nn.Module, spec: ModelSpec, data: Dataset, settings: OneShotSettings,
                 seed: int = 0) -> StructuredResult:
    """Random units of the trained `model`, `settings.keep` per layer, then finetuning."""
    return one_shot("random", random_choice, model, spec, data, settings, seed)


__all__ = ["random_choice", "random_units"]
