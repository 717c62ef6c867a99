import pytest
import torch
from torch import nn

from compress import models, scoring
from compress.errors import UsageError
from compress.mask import Mask
from compress.pruning import PruneHparams, layer_fractions, score_and_select


def _toy():
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 4.0]]))
        net[2].weight.copy_(torch.tensor([[5.0, -6.0]]))
    return net


def test_synflow_known_scores_on_a_toy_net():
    # |W| linearized, input ones: R = 5*(1+2) + 6*(3+4) = 57; score(w) = |w| * dR/d|w|.
    scores = scoring.get("synflow")(_toy(), input_shape=(2,))
    assert torch.allclose(scores["0.weight"], torch.tensor([[5.0, 10.0], [18.0, 24.0]]))
    assert torch.allclose(scores["2.weight"], torch.tensor([[15.0, 42.0]]))
    # Synaptic flow is conserved: every layer's scores sum to R.
    assert float(scores["0.weight"].sum()) == pytest.approx(57.0) == float(scores["2.weight"].sum())


def test_synflow_respects_mask_and_needs_input_shape():
    net = _toy()
    Mask({"0.weight": torch.tensor([[True, False], [True, True]]), "2.weight": torch.ones(1, 2, dtype=torch.bool)}
         ).apply(net)
    scores = scoring.get("synflow")(net, input_shape=(2,))
    assert torch.allclose(scores["0.weight"], torch.tensor([[5.0, 0.0], [18.0, 24.0]]))
    assert torch.allclose(scores["2.weight"], torch.tensor([[5.0, 42.0]]))
    with pytest.raises(UsageError, match="input_shape"):
        scoring.get("synflow")(net)


def test_iterative_synflow_reaches_exact_sparsity_without_collapse():
    model = models.build(models.ModelSpec("conv2", (1, 8, 8), 10, 0.25), seed=0)
    fr = layer_fractions(model, PruneHparams(output_rate_factor=1.0), rate=0.99)
    mask = score_and_select(model, Mask.ones_like(model), "synflow", fr, "global", iterations=20,
                            input_shape=(1, 8, 8))
    assert abs(mask.density - 0.01) < 1e-4
    assert all(bool(m.any()) for m in mask.values())  # no layer collapse at 99% (the paper's claim)
