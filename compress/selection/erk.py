"""ERK selection: Erdős–Rényi-Kernel layer densities (Evci et al., ICML 2020, RigL; Mocanu et al., 2018).

A layer of shape (out, in, kh, kw) gets density proportional to (out + in + kh + kw) / (out*in*kh*kw)
(linear: (out + in) / (out*in)), scaled so the pooled layers keep the requested number of weights;
layers that would exceed their current density are capped there and the rest rescaled. Within a
layer the highest scores are kept. `fractions` (s for every pruned layer) set the global target:
the pooled layers keep sum((1 - s_l) * kept_l) weights; layers with fraction 0 are excluded.
"""

from __future__ import annotations

import math

import torch

from compress.mask import Mask
from compress.selection.topk import keep_top


def erk_counts(shapes: dict[str, tuple[int, ...]], caps: dict[str, int], target: int) -> dict[str, int]:
    """Kept weights per layer: ERK-proportional, capped at `caps`, summing to `target` (rounded)."""
    raw = {n: sum(s) / math.prod(s) for n, s in shapes.items()}
    size = {n: math.prod(s) for n, s in shapes.items()}
    capped: set[str] = set()
    while True:
        free = [n for n in shapes if n not in capped]
        budget = target - sum(caps[n] for n in capped)
        divisor = sum(raw[n] * size[n] for n in free)
        eps = budget / divisor if divisor > 0 else 0.0
        over = [n for n in free if eps * raw[n] * size[n] > caps[n]]
        if not over:
            break
        capped.update(over)
    exact = {n: float(caps[n]) if n in capped else max(0.0, eps * raw[n] * size[n]) for n in shapes}
    counts = {n: min(caps[n], math.floor(v)) for n, v in exact.items()}
    # Largest remainders get the rounding slack so the total is exact.
    short = max(0, target - sum(counts.values()))
    for n in sorted(shapes, key=lambda n: exact[n] - math.floor(exact[n]), reverse=True):
        if short == 0:
            break
        if counts[n] < caps[n]:
            counts[n] += 1
            short -= 1
    return counts


def erk_densities(shapes: dict[str, tuple[int, ...]], density: float) -> dict[str, float]:
    """ERK densities of full layers for a global `density` (fraction of weights kept)."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    counts = erk_counts(shapes, sizes, round(density * sum(sizes.values())))
    return {n: counts[n] / sizes[n] for n in shapes}


def erk(scores: dict[str, torch.Tensor], mask: Mask, fractions: dict[str, float], **_: object) -> Mask:
    pooled = [n for n in mask if fractions.get(n, 0.0) > 0]
    out = {n: m.clone() for n, m in mask.items()}
    if not pooled:
        return Mask(out)
    caps = {n: int(mask[n].sum()) for n in pooled}
    target = sum(round((1 - fractions[n]) * caps[n]) for n in pooled)
    counts = erk_counts({n: tuple(mask[n].shape) for n in pooled}, caps, target)
    for n in pooled:
        out[n] = keep_top(scores[n], mask[n], counts[n])
    return Mask(out)
