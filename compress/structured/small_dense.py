"""The small dense control of Ye et al. (ICML 2020): the architecture GFS finds, trained from scratch.

The small network is the same model built with width x keep, which has exactly the widths the structured
methods keep (`kept_count` uses the width multiplier's rounding); this is checked, and a model without a
width multiplier is refused with a clear error.
"""

from __future__ import annotations

import dataclasses
import time

from compress.data import Dataset
from compress.errors import UsageError
from compress.models import ModelSpec, build
from compress.structured.result import StructuredResult, chosen_groups, state, target_counts
from compress.structured.settings import SmallDenseSettings
from compress.structured.units import unit_groups
from compress.train import train


def small_spec(spec: ModelSpec, data: Dataset, keep: float, layers: tuple[str, ...] = ()) -> ModelSpec:
    """`spec` at width x keep, checked to have the widths of `keep` applied to every unit group."""
    large = build(spec, seed=0)
    want = target_counts(chosen_groups(large, data.input_shape, layers), keep)
    small = dataclasses.replace(spec, width=spec.width * keep)
    try:
        got = {g.name: g.size for g in unit_groups(build(small, seed=0), data.input_shape)}
    except UsageError as e:
        raise UsageError(f"the small dense control builds {spec.name} at width {small.width:g}, which failed: {e}") \
            from e
    others = {g.name: g.size for g in unit_groups(large, data.input_shape) if g.name not in want}
    if got != {**others, **want}:
        raise UsageError(f"{spec.name} at width {small.width:g} has widths {got}, not the {want} a keep of {keep:g} "
                         "gives; the small dense control needs a model whose width multiplier scales every hidden "
                         "layer (the registry's models do).")
    return small


def small_dense(spec: ModelSpec, data: Dataset, settings: SmallDenseSettings, seed: int = 0) -> StructuredResult:
    """Train the model at width x keep from a fresh initialization (seeded)."""
    t0 = time.perf_counter()
    small = small_spec(spec, data, settings.keep)
    net = build(small, seed=seed)
    start = state(net)
    r = train(net, data, settings.train, seed=seed)
    return StructuredResult("small_dense", small, net, start, {},
                            {**r.metrics(), "wall_s": round(time.perf_counter() - t0, 3)})


__all__ = ["small_dense", "small_spec"]
