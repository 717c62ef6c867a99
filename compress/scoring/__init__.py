"""Scorers: `get(name)(model, **options) -> {layer: scores}`; higher scores are kept.

Scoring is separate from selection (compress.selection): any scorer combines with any selection.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from compress.errors import UnknownNameError
from compress.scoring.magnitude import magnitude

Scorer = Callable[..., dict[str, torch.Tensor]]
_REGISTRY: dict[str, Scorer] = {"magnitude": magnitude}


def register(name: str, fn: Scorer) -> None:
    _REGISTRY[name] = fn


def get(name: str) -> Scorer:
    if name not in _REGISTRY:
        raise UnknownNameError("scorer", name, _REGISTRY)
    return _REGISTRY[name]


def names() -> list[str]:
    return sorted(_REGISTRY)
