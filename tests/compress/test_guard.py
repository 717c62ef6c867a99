import pytest
import torch
from torch import nn

from compress import models
from compress.mask import Mask
from compress.pruning import PruneHparams, layer_fractions, prune
from compress.selection import guard
from compress.selection.guard import LayerCollapseError


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))


def test_empty_layer_is_refused_by_name_unless_allowed():
    model = _mlp()
    mask = Mask.ones_like(model)
    mask["2.weight"] = torch.zeros(3, 3, dtype=torch.bool)
    with pytest.raises(LayerCollapseError, match=r"every weight of layer\(s\) 2.weight.*--allow-collapse"):
        guard.check(model, mask)
    guard.check(model, mask, allow_collapse=True)


def test_layer_without_a_path_to_the_output_is_refused():
    model = _mlp()
    mask = Mask.ones_like(model)
    mask["0.weight"] = torch.zeros(3, 4, dtype=torch.bool)
    mask["0.weight"][0] = True           # only hidden unit 0 receives input...
    mask["2.weight"] = torch.zeros(3, 3, dtype=torch.bool)
    mask["2.weight"][:, 1] = True        # ...but layer 2 reads only hidden unit 1 (biases do not count)
    assert guard.pathless_layers(model, mask) == ["2.weight"]
    with pytest.raises(LayerCollapseError, match="2.weight with no path"):
        guard.check(model, mask)
    mask["2.weight"][0, 0] = True        # one kept weight on a real path repairs it
    guard.check(model, mask)


def test_global_selection_that_empties_a_layer_is_refused_in_prune():
    model = models.build(models.ModelSpec("conv2", (1, 8, 8), 10, 0.25), seed=0)
    # Scores that rank the first conv lowest: a global top-k at 90% removes all of it.
    scores = {k: (torch.zeros_like(w) if k == "0.weight" else torch.rand_like(w) + 1)
              for k, w in models.prunable(model).items()}
    fr = layer_fractions(model, PruneHparams(output_rate_factor=1.0), rate=0.9)
    with pytest.raises(LayerCollapseError, match="0.weight"):
        prune(model, Mask.ones_like(model), scores, fr, "global", input_shape=(1, 8, 8))
    mask = prune(model, Mask.ones_like(model), scores, fr, "global", allow_collapse=True, input_shape=(1, 8, 8))
    assert not bool(mask["0.weight"].any())
