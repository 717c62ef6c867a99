"""Pruning settings and the prune step: scores + current mask + per-layer fractions -> a smaller mask."""

from __future__ import annotations

import copy
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


def step_fractions(mask: Mask, fractions: dict[str, float], start: dict[str, int], k: int, iterations: int,
                   pooled: bool) -> dict[str, float]:
    """Fractions that bring step k of `iterations` to density (1 - f)^(k/iterations) of the start counts."""
    out = {n: 0.0 for n in mask}
    live = [n for n in mask if fractions.get(n, 0.0) > 0]
    if not live:
        return out
    if pooled:  # global and ERK rank the pooled layers together: one fraction of the pooled count
        f = max(fractions[n] for n in live)
        kept = sum(int(mask[n].sum()) for n in live)
        target = sum(start[n] for n in live) * (1 - f) ** (k / iterations)
        return out | {n: max(0.0, 1 - target / kept) if kept else 0.0 for n in live}
    for n in live:
        kept = int(mask[n].sum())
        out[n] = max(0.0, 1 - start[n] * (1 - fractions[n]) ** (k / iterations) / kept) if kept else 0.0
    return out


def score_and_select(model: nn.Module, mask: Mask, scorer: str, fractions: dict[str, float],
                     selection: str = "global", iterations: int = 1, allow_collapse: bool = False,
                     input_shape: tuple[int, ...] | None = None, **options: object) -> Mask:
    """Score the masked `model` with `scorer` and select; with iterations > 1 prune in small steps,
    rescoring the pruned net each time (SynFlow's schedule). Any scorer works with any selection."""
    from compress import scoring
    from compress.selection.nm import is_nm

    fn = scoring.get(scorer)
    iterations = 1 if is_nm(selection) else iterations  # an N:M pattern is reached in one step
    start = {n: int(m.sum()) for n, m in mask.items()}
    current = mask
    for k in range(1, iterations + 1):
        net = current.apply(copy.deepcopy(model))
        scores = fn(net, input_shape=input_shape, **options)
        step = step_fractions(current, fractions, start, k, iterations, selection in ("global", "erk"))
        # Intermediate (denser) steps skip the guard; the final mask is what must stay connected.
        current = prune(model, current, scores, step, selection, allow_collapse=allow_collapse or k < iterations,
                        input_shape=input_shape, **options)
    return current
