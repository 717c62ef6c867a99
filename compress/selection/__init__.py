"""Selections: `get(name)(scores, mask, fractions, **options) -> Mask`, a subset of `mask`.

`fractions[layer]` is the fraction of that layer's remaining weights to remove (0 = leave alone).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from compress.errors import UnknownNameError
from compress.mask import Mask
from compress.selection.erk import erk
from compress.selection.global_topk import global_topk
from compress.selection.layerwise import layerwise
from compress.selection.nm import nm_select

Selection = Callable[..., Mask]
_REGISTRY: dict[str, Selection] = {"layerwise": layerwise, "global": global_topk, "erk": erk, "n:m": nm_select}


def register(name: str, fn: Selection) -> None:
    _REGISTRY[name] = fn


def get(name: str) -> Selection:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name and "n:m" in _REGISTRY:  # "2:4" and friends route to the N:M selection
        fn = _REGISTRY["n:m"]
        return lambda scores, mask, fractions, **o: fn(scores, mask, fractions, pattern=name, **o)
    hint = "N:M patterns are written like 2:4." if "n:m" in _REGISTRY else ""
    raise UnknownNameError("selection", name, _REGISTRY, hint)


def names() -> list[str]:
    return sorted(_REGISTRY)


__all__ = ["Selection", "get", "names", "register", "torch"]
