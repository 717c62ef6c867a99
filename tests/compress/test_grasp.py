import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compress import scoring
from compress.errors import UsageError
from compress.scoring.grasp import hessian_gradient_product, redraw_linear


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
    scores = scoring.get("grasp")(model, batches=batches, temperature=200.0, reinit_linear=False)
    _, hg = hessian_gradient_product(model, batches, 200.0)
    for name in ("0.weight", "2.weight"):
        assert torch.allclose(scores[name], model.state_dict()[name] * hg[name])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def _conv_net():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 5), nn.ReLU(),
                          nn.Linear(5, 3)).double()
    batches = [(torch.randn(6, 1, 4, 4, dtype=torch.float64), torch.randint(0, 3, (6,)))]
    return model, batches


def test_grasp_default_scores_a_copy_with_redrawn_linear_weights_like_the_official_code():
    model, batches = _conv_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scores = scoring.get("grasp")(model, batches=batches, temperature=2.0, seed=3)
    redrawn = redraw_linear(model, seed=3)
    # Only the fc weights were redrawn (Xavier normal: std sqrt(2 / (fan_in + fan_out))), the conv kept.
    assert torch.equal(redrawn[0].weight, model[0].weight)
    for i in (3, 5):
        assert not torch.equal(redrawn[i].weight, model[i].weight)
        assert torch.equal(redrawn[i].bias, model[i].bias)
    # theta * Hg of the redrawn copy, for every layer (conv included: its Hg sees the redrawn fc layers).
    _, hg = hessian_gradient_product(redrawn, batches, 2.0)
    for name, w in redrawn.state_dict().items():
        if name in hg:
            assert torch.allclose(scores[name], w * hg[name]), name
    own = scoring.get("grasp")(model, batches=batches, temperature=2.0, reinit_linear=False)
    assert not torch.allclose(scores["3.weight"], own["3.weight"])
    # The draw depends on the seed only, not on the fc weights being scored; the caller's net is untouched.
    with torch.no_grad():
        other = redraw_linear(model, seed=3)
        other[3].weight.mul_(5.0)
    assert torch.equal(redraw_linear(other, seed=3)[3].weight, redrawn[3].weight)
    assert not torch.equal(redraw_linear(model, seed=4)[3].weight, redrawn[3].weight)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_redraw_keeps_pruned_fc_weights_at_zero_and_draws_xavier_scale():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(400, 300), nn.ReLU(), nn.Linear(300, 10))
    with torch.no_grad():
        model[0].weight[:, ::2] = 0.0
    redrawn = redraw_linear(model, seed=0)
    w = redrawn[0].weight.detach()
    assert torch.equal(w[:, ::2], torch.zeros_like(w[:, ::2]))
    assert bool((w[:, 1::2] != 0).all())
    assert float(w[:, 1::2].std()) == pytest.approx((2 / 700) ** 0.5, rel=0.05)


def test_grasp_without_batches_is_refused():
    model, _ = _toy()
    for empty in (None, []):
        with pytest.raises(UsageError, match="needs data"):
            scoring.get("grasp")(model, batches=empty)
