"""Binarization: binary layers (compress.binarize.layers), the model transforms that use them, scored layers
(MPT) and the `binarize` method. Loaded on first use, so the torch-free method module imports instantly."""

from __future__ import annotations

from typing import Any

_LAZY = {"BINARY_TYPES": "layers", "BinaryConv2d": "layers", "BinaryLinear": "layers", "from_float": "layers",
         "sign": "layers", "ste_sign": "layers", "binarize_model": "transform", "default_layers": "transform"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"compress.binarize.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'compress.binarize' has no attribute {name!r}")


__all__ = list(_LAZY)
