import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compress import scoring
from compress.errors import UsageError
from compress.scoring.grasp import hessian_gradient_product


def _toy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    batches = [(torch.randn(6, 4, dtype=torch.float64), torch.randint(0, 3, (6,))) for _ in range(2)]
    return model, batches


def _grad_at(model, batches, weights, temperature):
    """Plain gradient of the summed loss at the given weights (no double backprop)."""
    params = [model[0].weight, model[2].weight]
    with torch.no_grad():
        for p, w in zip(params, weights, strict=True):
            p.copy_(w)
    loss = sum(F.cross_entropy(model(x) / temperature, y) for x, y in batches)
    return torch.autograd.grad(loss, params)


def test_hessian_gradient_product_matches_finite_differences():
    model, batches = _toy()
    temperature = 2.0
    g, hg = hessian_gradient_product(model, batches, temperature)
    theta = [model[0].weight.detach().clone(), model[2].weight.detach().clone()]
    gv = [g["0.weight"], g["2.weight"]]
    eps = 1e-4
    plus = _grad_at(model, batches, [t + eps * d for t, d in zip(theta, gv, strict=True)], temperature)
    minus = _grad_at(model, batches, [t - eps * d for t, d in zip(theta, gv, strict=True)], temperature)
    for name, p, m in zip(("0.weight", "2.weight"), plus, minus, strict=True):
        fd = (p - m) / (2 * eps)
        assert torch.allclose(hg[name], fd, rtol=1e-5, atol=1e-8), name
    assert any(float(v.abs().max()) > 1e-4 for v in hg.values())  # a non-trivial product


def test_grasp_scores_are_theta_times_hg_and_model_untouched():
    model, batches = _toy()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scores = scoring.get("grasp")(model, batches=batches, temperature=200.0)
    _, hg = hessian_gradient_product(model, batches, 200.0)
    for name in ("0.weight", "2.weight"):
        assert torch.allclose(scores[name], model.state_dict()[name] * hg[name])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_grasp_without_batches_is_refused():
    model, _ = _toy()
    for empty in (None, []):
        with pytest.raises(UsageError, match="needs data"):
            scoring.get("grasp")(model, batches=empty)
