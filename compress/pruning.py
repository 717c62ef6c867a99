"""Pruning settings and the prune step: scores + current mask + per-layer fractions -> a smaller mask."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import torch
from torch import nn

from compress.errors import UsageError
from compress.hparams import Hparams, check_range
from compress.mask import Mask
from compress.models import output_layer, prunable


@dataclass(frozen=True)
class PruneHparams(Hparams):
    rate: float = 0.2                 # fraction of the remaining weights removed per round (IMP)
    selection: str = "layerwise"      # see compress.selection.names()
    output_rate_factor: float = 0.5   # the output layer is pruned at half the rate (LTH paper)
    layer_rates: tuple[str, ...] = ()  # "NAME=RATE" overrides; NAME may be a glob over state_dict names
    exclude: tuple[str, ...] = ()     # layers never pruned (globs; "first"/"last" are shortcuts)
    allow_collapse: bool = False      # keep masks that disconnect a layer (compress.selection.guard)
    nm_policy: str = "fail"           # N:M selections: a layer without pad-free M-groups fails, or stays dense

    def options(self) -> dict[str, object]:
        """Keyword options `prune` passes on to the selection and the collapse guard."""
        return {"allow_collapse": self.allow_collapse, "nm_policy": self.nm_policy}

    def validate(self) -> None:
        check_range("rate", self.rate, 0.0, 1.0, lo_open=True, hi_open=True)
        check_range("output_rate_factor", self.output_rate_factor, 0.0, 1.0 / self.rate)
        for item in self.layer_rates:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise UsageError(f"layer rate '{item}' must look like NAME=RATE, e.g. fc1.weight=0.3.")
            try:
                check_range(f"rate of {name}", float(value), 0.0, 1.0, hi_open=True)
            except ValueError as e:
                raise UsageError(f"layer rate '{item}': '{value}' is not a number.") from e
        if self.nm_policy not in ("fail", "dense"):
            raise UsageError(f"nm_policy must be fail or dense, got '{self.nm_policy}'.")
        if ":" in self.selection:
            from compress.sparsity import nm

            nm.parse(self.selection)


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
