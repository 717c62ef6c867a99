"""Scorers: `get(name)(model, **options) -> {layer: scores}`; higher scores are kept.

Scoring is separate from selection (compress.selection): any scorer combines with any selection.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from compress.errors import UnknownNameError
from compress.scoring.grasp import grasp
from compress.scoring.magnitude import magnitude
from compress.scoring.random import random_scores
from compress.scoring.snip import snip
from compress.scoring.synflow import synflow

Scorer = Callable[..., dict[str, torch.Tensor]]
_REGISTRY: dict[str, Scorer] = {"magnitude": magnitude, "grasp": grasp, "snip": snip, "synflow": synflow,
                                 "random": random_scores}
# Scorers that read training batches (the others are data-free).
NEEDS_DATA = ("grasp", "snip")


def register(name: str, fn: Scorer) -> None:
    _REGISTRY[name] = fn


def get(name: str) -> Scorer:
    if name not in _REGISTRY:
        raise UnknownNameError("scorer", name, _REGISTRY)
    return _REGISTRY[name]


def names() -> list[str]:
    return sorted(_REGISTRY)
