"""Registered model rewrites (binarize, score-masked layers, ...) recorded in `ModelSpec.extra`.

A ticket whose architecture was rewritten stores `extra = {"transforms": [{"name": ..., **config}]}`;
`build()` replays them after initialization so the ticket reloads into the same module tree.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from compress.errors import UnknownNameError

Transform = Callable[[nn.Module, dict], nn.Module]
_REGISTRY: dict[str, Transform] = {}


def register(name: str) -> Callable[[Transform], Transform]:
    def deco(fn: Transform) -> Transform:
        _REGISTRY[name] = fn
        return fn

    return deco


def apply(model: nn.Module, transforms: list[dict]) -> nn.Module:
    _load_builtin()
    for t in transforms:
        cfg = dict(t)
        name = cfg.pop("name")
        if name not in _REGISTRY:
            raise UnknownNameError("model transform", name, _REGISTRY)
        model = _REGISTRY[name](model, cfg)
    return model


def _load_builtin() -> None:
    """Import the packages that register transforms (kept lazy: they are optional to plain pruning)."""
    import importlib

    for mod in ("compress.binarize.transform", "compress.binarize.scored", "compress.models.batchnorm",
                "compress.structured.shrink"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
