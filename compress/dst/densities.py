"""Per-layer densities (ERK or uniform) and the random starting mask of sparse training.

ERK (Evci et al., ICML 2020): density of a layer proportional to (sum of its dims) / (number of weights),
scaled to the requested parameter count; layers that would exceed density 1 stay dense and the rest are
rescaled (compress.selection.erk.erk_counts, shared with ERK pruning). With `dense_output` the output
layer is dense and the sparsity applies to the other layers, as in the reference code's MNIST setup.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from compress.errors import UsageError
from compress.mask import Mask
from compress.models import output_layer, prunable
from compress.selection.erk import erk_counts


def layer_counts(model: nn.Module, sparsity: float, distribution: str, dense_output: bool = False) -> dict[str, int]:
    """Kept weights per prunable layer for a global `sparsity` under `distribution` (erk or uniform)."""
    shapes = {n: tuple(w.shape) for n, w in prunable(model).items()}
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    fixed = {output_layer(model): sizes[output_layer(model)]} if dense_output and len(shapes) > 1 else {}
    pool = {n: s for n, s in shapes.items() if n not in fixed}
    if distribution == "erk":
        target = round((1 - sparsity) * sum(sizes[n] for n in pool))
        counts = {**erk_counts(pool, {n: sizes[n] for n in pool}, target), **fixed}
    elif distribution == "uniform":
        counts = {**{n: round((1 - sparsity) * sizes[n]) for n in pool}, **fixed}
    else:
        raise UsageError(f"distribution must be erk or uniform, got '{distribution}'.")
    empty = [n for n in shapes if counts[n] < 1]
    if empty:
        raise UsageError(f"sparsity {sparsity} with {distribution} densities leaves no weight in "
                         f"{', '.join(empty)}; lower the sparsity or use erk.")
    return {n: counts[n] for n in shapes}


def random_mask(model: nn.Module, counts: dict[str, int], seed: int) -> Mask:
    """A random mask keeping exactly `counts[layer]` weights of each layer."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, w in prunable(model).items():
        flat = torch.zeros(w.numel(), dtype=torch.bool)
        flat[torch.randperm(w.numel(), generator=g)[: counts[name]]] = True
        out[name] = flat.reshape(w.shape)
    return Mask(out)
