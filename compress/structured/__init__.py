"""Structured pruning: removable units, physical shrinking, greedy forward selection and its controls.

- `units`: unit groups (conv channels, linear neurons) and their coupling, from Torch-Pruning's DepGraph;
- `shrink`: a smaller real `nn.Module`, and the `shrink` model transform that makes shrunk tickets rebuild;
- `gfs`: greedy forward selection (Ye et al., ICML 2020); `l1`, `random_units`, `small_dense`: its controls;
- `flops`, `verdict`: FLOPs from torch.utils.flop_counter; when a method wins against its controls;
- `finder`: the `gfs` method's run (dense level 0, GFS ticket, controls, summary); the method itself
  (`lottery find gfs`, pipeline stage `gfs`) is `compress.finders.gfs`.

Settings (`compress.structured.settings`) import no torch; the methods below load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "gfs": "compress.structured.gfs", "l1": "compress.structured.l1",
    "random_units": "compress.structured.random_units", "small_dense": "compress.structured.small_dense",
    "shrink": "compress.structured.shrink", "shrunk_copy": "compress.structured.shrink",
    "structured_spec": "compress.structured.shrink", "unit_groups": "compress.structured.units",
    "UnitGroup": "compress.structured.units", "flops": "compress.structured.flops",
    "verdict": "compress.structured.verdict", "StructuredResult": "compress.structured.result",
    "GfsSettings": "compress.structured.settings", "OneShotSettings": "compress.structured.settings",
    "SmallDenseSettings": "compress.structured.settings", "VerdictSettings": "compress.structured.settings",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'compress.structured' has no attribute {name!r}")


__all__ = sorted(_LAZY)
