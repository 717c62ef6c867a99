import math

import pytest
import torch

from compress import models
from compress.mask import Mask
from compress.pruning import PruneHparams, layer_fractions, prune
from compress.selection.erk import erk_densities


def _conv4():
    return models.build(models.ModelSpec("conv4", (1, 28, 28), 10, 0.25), seed=0)


@pytest.mark.parametrize("density", [0.5, 0.2, 0.1, 0.05, 0.01])
def test_erk_densities_give_the_requested_global_density(density):
    shapes = {k: tuple(w.shape) for k, w in models.prunable(_conv4()).items()}
    d = erk_densities(shapes, density)
    sizes = {k: math.prod(s) for k, s in shapes.items()}
    total = sum(d[k] * sizes[k] for k in shapes) / sum(sizes.values())
    assert abs(total - density) < 1e-3
    assert all(0 <= v <= 1 for v in d.values())
    # Erdős–Rényi-Kernel: layers with a larger (sum of dims / number of weights) are denser.
    raw = {k: sum(s) / math.prod(s) for k, s in shapes.items()}
    free = sorted((k for k in shapes if d[k] < 1), key=lambda k: raw[k])
    assert all(d[a] <= d[b] + 1e-3 for a, b in zip(free, free[1:], strict=False))


def test_erk_selection_from_a_full_mask_and_from_a_pruned_one():
    model = _conv4()
    scores = {k: w.abs() for k, w in models.prunable(model).items()}
    fr = layer_fractions(model, PruneHparams(output_rate_factor=1.0), rate=0.9)
    mask = prune(model, Mask.ones_like(model), scores, fr, "erk", input_shape=(1, 28, 28))
    assert abs(mask.density - 0.1) < 1e-3
    assert mask.layer_density()["0.weight"] > 0.5 > mask.layer_density()["11.weight"]
    for k, w in scores.items():  # highest scores kept inside each layer
        if 0 < mask[k].sum() < mask[k].numel():
            assert w[mask[k]].min() >= w[~mask[k]].max()
    again = prune(model, mask, scores, layer_fractions(model, PruneHparams(output_rate_factor=1.0), rate=0.5), "erk",
                  input_shape=(1, 28, 28))
    assert again.is_subset_of(mask) and abs(again.density - 0.05) < 1e-3


def test_erk_leaves_excluded_layers_alone():
    model = _conv4()
    scores = {k: torch.rand_like(w) for k, w in models.prunable(model).items()}
    fr = layer_fractions(model, PruneHparams(exclude=("first", "last"), output_rate_factor=1.0), rate=0.8)
    mask = prune(model, Mask.ones_like(model), scores, fr, "erk", input_shape=(1, 28, 28))
    assert bool(mask["0.weight"].all()) and bool(mask[models.output_layer(model)].all())
