import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compress import scoring
from compress.errors import UsageError


def test_snip_equals_abs_theta_times_hand_computed_gradient():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 3)).double()
    x, y = torch.randn(8, 5, dtype=torch.float64), torch.randint(0, 3, (8,))
    scores = scoring.get("snip")(model, batches=[(x, y)])
    w, b = model[0].weight.detach(), model[0].bias.detach()
    # Softmax regression: dL/dW = (softmax(xW^T + b) - onehot(y))^T x / N for the mean cross-entropy.
    p = torch.softmax(x @ w.T + b, dim=1)
    grad = (p - F.one_hot(y, 3).double()).T @ x / len(y)
    assert torch.allclose(scores["0.weight"], (w * grad).abs(), atol=1e-12)
    assert model[0].weight.grad is None  # scored on a copy


def test_snip_sums_batches_and_needs_data():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(5, 3)).double()
    b1 = (torch.randn(4, 5, dtype=torch.float64), torch.randint(0, 3, (4,)))
    b2 = (torch.randn(4, 5, dtype=torch.float64), torch.randint(0, 3, (4,)))
    grads = []
    for xb, yb in (b1, b2):
        m = model
        m.zero_grad()
        F.cross_entropy(m(xb), yb).backward()
        grads.append(m[0].weight.grad.clone())
    expected = (model[0].weight.detach() * (grads[0] + grads[1])).abs()
    assert torch.allclose(scoring.get("snip")(model, batches=[b1, b2])["0.weight"], expected, atol=1e-12)
    with pytest.raises(UsageError, match="'snip' needs data"):
        scoring.get("snip")(model, batches=[])
