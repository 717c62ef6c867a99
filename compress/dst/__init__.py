"""Dynamic sparse training: RigL (Evci et al., ICML 2020), SET (Mocanu et al., 2018) and static sparse.

`DstHparams` (compress.dst.settings) is torch-free; `run(spec, data, hp, seed)` (compress.dst.trainer) trains
once and returns a Ticket and a history. One module per rule: schedule (cosine drop fraction), rigl, set,
static; update holds the shared drop/grow callback, densities the ERK/uniform start, flops the cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from compress.dst.settings import DISTRIBUTIONS, METHODS, DstHparams

if TYPE_CHECKING:
    from compress.dst.trainer import DstResult, run

_LAZY = {"DstResult", "run"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from compress.dst import trainer as module

        return getattr(module, name)
    raise AttributeError(f"module 'compress.dst' has no attribute {name!r}")


__all__ = ["DISTRIBUTIONS", "METHODS", "DstHparams", "DstResult", "run"]
