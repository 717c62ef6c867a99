"""Pruning settings and the prune step: scores + current mask + per-layer fractions -> a smaller mask."""

from __future__ import annotations

import fnmatch

import torch
from torch import nn

from compress.errors import UsageError
from compress.mask import Mask
from compress.models import output_layer, prunable
from compress.settings import PruneHparams


def layer_fractions(model: nn.Module, hp: PruneHparams, rate: float | None = None) -> dict[str, float]:
    """Per-layer fraction of remaining weights to remove this round (0 for excluded layers)."""
    base = hp.rate if rate is None else rate
    weights = list(prunable(model))
    if not weights:
        raise UsageError(f"{type(model).__name__} has no conv or linear layer to prune.")
    last = output_layer(model)
    fractions = {n: base for n in weights}
    fractions[last] = min(base * hp.output_rate_factor, 0.999999)
    for item in hp.layer_rates:
        pattern, _, value = item.partition("=")
        hits = _match(pattern, weights, "layer rate")
        for n in hits:
            fractions[n] = float(value)
    for pattern in hp.exclude:
        for n in _match(pattern, weights, "exclude", first=weights[0], last=last):
            fractions[n] = 0.0
    return fractions


def _match(pattern: str, names: list[str], what: str, first: str = "", last: str = "") -> list[str]:
    alias = {"first": first, "last": last}
    if pattern in alias and alias[pattern]:
        return [alias[pattern]]
    hits = [n for n in names if fnmatch.fnmatchcase(n, pattern) or fnmatch.fnmatchcase(n, pattern + ".weight")]
    if not hits:
        raise UsageError(f"{what} '{pattern}' matches no prunable layer. Prunable layers: {', '.join(names)}"
                         f"{' (or first/last)' if what == 'exclude' else ''}.")
    return hits


def prune(model: nn.Module, mask: Mask, scores: dict[str, torch.Tensor], fractions: dict[str, float],
          selection: str = "layerwise", allow_collapse: bool = False, input_shape: tuple[int, ...] | None = None,
          **options: object) -> Mask:
    """Remove the lowest-scored remaining weights; the result is always a subset of `mask`.

    Every selection's result goes through the layer-collapse guard (compress.selection.guard): a mask
    that empties a layer or cuts every path through it is refused unless `allow_collapse`. Path
    checks on conv nets need `input_shape` (one sample's shape)."""
    from compress import selection as sel
    from compress.selection import guard

    new = sel.get(selection)(scores, mask, fractions, **options)
    new.check(model)
    if not new.is_subset_of(mask):
        raise AssertionError(f"selection '{selection}' grew the mask; masks may only shrink")
    guard.check(model, new, allow_collapse, input_shape)
    return new
