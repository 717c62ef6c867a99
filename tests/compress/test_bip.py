"""BiP: the closed-form implicit gradient against finite differences, exact-k masks at every step of every
bilevel optimizer, and the ticket it returns (with controls)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from compress.bip.problem import BipOracle, BipProblem, mask_gradient
from compress.bip.run import run_seed
from compress.bip.search import bilevel_prune
from compress.bip.settings import BipHparams
from compress.errors import UsageError
from compress.models import ModelSpec, build, prunable
from compress.report.levels import collect
from compress.settings import ControlHparams, TrainHparams
from compress.ticket import Ticket

# --- the implicit gradient on a tiny net -------------------------------------------------------------

G = torch.Generator().manual_seed(0)
X = torch.randn(24, 4, generator=G, dtype=torch.float64)
Y = torch.randint(0, 3, (24,), generator=G)
B1 = torch.randn(5, generator=G, dtype=torch.float64)  # fixed biases keep theta* away from the trivial 0
N = 35  # a 4-5-3 tanh net: its 35 weights are all prunable


def tiny_loss(z: torch.Tensor) -> torch.Tensor:
    w1, w2 = z[:20].view(5, 4), z[20:].view(3, 5)
    return F.cross_entropy(torch.tanh(X @ w1.T + B1) @ w2.T, Y)


def lower(theta: torch.Tensor, m: torch.Tensor, gamma: float) -> torch.Tensor:
    return tiny_loss(m * theta) + 0.5 * gamma * (theta**2).sum()


def _grad_theta(theta: torch.Tensor, m: torch.Tensor, gamma: float) -> torch.Tensor:
    theta = theta.detach().requires_grad_(True)
    return torch.autograd.grad(lower(theta, m, gamma), theta)[0]


def _hessian(theta: torch.Tensor, m: torch.Tensor, gamma: float) -> torch.Tensor:
    return torch.autograd.functional.hessian(lambda t: lower(t, m, gamma), theta)


def theta_star(m: torch.Tensor, gamma: float, start: torch.Tensor) -> torch.Tensor:
    """Newton's method on the strongly convex lower problem, to machine precision."""
    theta = start.clone()
    for _ in range(30):
        g = _grad_theta(theta, m, gamma)
        if float(g.norm()) < 1e-13:
            break
        theta = theta - torch.linalg.solve(_hessian(theta, m, gamma), g)
    return theta


def upper(m: torch.Tensor, gamma: float, start: torch.Tensor) -> torch.Tensor:
    return tiny_loss(m * theta_star(m, gamma, start))


DIRECTIONS = torch.randn(4, N, generator=G, dtype=torch.float64)


def finite_difference(m: torch.Tensor, gamma: float, start: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Central differences of F along each of DIRECTIONS (each F solves the lower problem anew)."""
    return torch.stack([(upper(m + eps * d, gamma, start) - upper(m - eps * d, gamma, start)) / (2 * eps)
                        for d in DIRECTIONS])


def exact_implicit(m: torch.Tensor, gamma: float, theta: torch.Tensor) -> torch.Tensor:
    """dF/dm by the implicit function theorem with the true Hessian (what the closed form approximates)."""
    mm, tt = m.clone().requires_grad_(True), theta.clone().requires_grad_(True)
    gm, gt = torch.autograd.grad(tiny_loss(mm * tt), (mm, tt))
    h = _hessian(theta, m, gamma)
    j = torch.autograd.functional.jacobian(lambda mv: _grad_theta_graph(theta, mv, gamma), m)  # d(grad_theta)/dm
    return gm - j.T @ torch.linalg.solve(h, gt)


def _grad_theta_graph(theta: torch.Tensor, m: torch.Tensor, gamma: float) -> torch.Tensor:
    theta = theta.detach().requires_grad_(True)
    return torch.autograd.grad(lower(theta, m, gamma), theta, create_graph=True)[0]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_closed_form_implicit_gradient_agrees_with_finite_differences():
    start = torch.zeros(N, dtype=torch.float64)
    m = 0.5 + 0.5 * torch.rand(N, generator=G, dtype=torch.float64)  # a relaxed mask, as BiP differentiates
    errors = {}
    for gamma in (2.0, 8.0, 32.0):
        theta = start = theta_star(m, gamma, start)
        fd = finite_difference(m, gamma, theta)  # warm-started at theta*(m)
        # The finite differences are right: the exact implicit gradient matches them tightly.
        assert float(theta.norm()) > 1e-3
        assert rel(DIRECTIONS @ exact_implicit(m, gamma, theta), fd) < 1e-6
        closed = DIRECTIONS @ mask_gradient(tiny_loss, m, theta, 1.0 / gamma)
        errors[gamma] = rel(closed, fd)
        # Dropping the implicit term is clearly worse than BiP's closed form.
        assert rel(DIRECTIONS @ mask_gradient(tiny_loss, m, theta, 0.0), fd) > 2 * errors[gamma]
    # The closed form rests on grad_zz loss ~ 0 and H + gamma I ~ gamma I: its error shrinks as gamma grows.
    assert errors[32.0] < 0.02 and errors[32.0] < errors[8.0] < errors[2.0], errors


# --- BiP on a real (tiny) network ---------------------------------------------------------------------

@pytest.fixture
def tiny(digits):
    spec = ModelSpec("lenet_300_100", digits.input_shape, digits.num_classes, 0.1)
    return spec, build(spec, seed=0)


def test_oracle_is_the_closed_form_through_the_straight_through_mask(tiny, digits):
    spec, model = tiny
    problem = BipProblem(model, digits, k=300, gamma=0.01)
    y = problem.params()
    scores = problem.weight_vector(y).abs() + 0.01 * torch.rand(problem.total, generator=G)
    batch = torch.arange(64)
    hyper = BipOracle(scale=5.0).hypergrad(problem, [scores], y, batch, batch)[0]
    m = problem.mask(scores)
    assert int(m.sum()) == 300

    def loss_of_z(z):  # the network with its prunable weights set to z, written independently of BipProblem
        params, off = {n: p.detach() for n, p in model.named_parameters()}, 0
        for _, name, shape, size in problem.pruned:
            params[name] = z[off : off + size].view(shape)
            off += size
        return F.cross_entropy(functional_call(model, params, (digits.x_train[batch],)), digits.y_train[batch])

    expected = mask_gradient(loss_of_z, m, problem.weight_vector(y), 5.0)
    assert torch.allclose(hyper, expected, atol=1e-7, rtol=1e-4)
    # With a shared batch, one backward gives the same two gradients as the separate calls.
    u, v = BipOracle(scale=5.0).both(problem, [scores], y, batch, batch)
    u2 = BipOracle(scale=5.0).lower_grad(problem, [scores], y, batch)
    assert torch.allclose(v[0], hyper, atol=1e-7)
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(u, u2, strict=True))


@pytest.mark.parametrize("optimizer", ["sgd", "mrbo", "vrbo"])
def test_mask_keeps_exactly_k_weights_after_every_step(tiny, digits, optimizer):
    spec, model = tiny
    hp = BipHparams(density=0.07, bilevel_optimizer=optimizer, prune_epochs=1.0, batch_size=64, upper_lr=1.0,
                    vrbo_large_batch=256, vrbo_period=3)
    seen: list[int] = []

    def check(opt, problem):
        seen.append(problem.to_mask(opt.x[0]).kept)
        assert int(problem.mask(opt.x[0]).sum()) == problem.k

    problem, opt, history = bilevel_prune(model, digits, hp, seed=0, on_step=check)
    assert problem.k == round(0.07 * problem.total)
    assert len(seen) == history["steps"] > 3 and set(seen) == {problem.k}
    assert sum(e["mask_changed"] for e in history["epochs"]) > 0  # the scores really moved the mask


def test_run_seed_writes_a_k_weight_ticket_with_controls_and_a_verdict(tiny, digits, tmp_path):
    spec, _ = tiny
    fast = TrainHparams(epochs=1, batch_size=64, eval_every=5)
    hp = BipHparams(density=0.1, prune_epochs=1, batch_size=64, pretrain=fast, finetune=fast,
                    controls=ControlHparams(controls=("reinit", "random")))
    ticket = run_seed(tmp_path, hp, digits, spec, seed=0)
    total = sum(w.numel() for w in prunable(build(spec)).values())
    assert ticket.mask.kept == round(0.1 * total) and ticket.meta["method"] == "bip"
    for name, m in ticket.mask.items():
        assert bool((ticket.init[name][~m] == 0).all()) and bool((ticket.final[name][~m] == 0).all())
    assert not torch.equal(ticket.init["1.weight"], ticket.final["1.weight"])  # finetuning trained it
    dense = Ticket.load(tmp_path / "seed-0" / "level-0")
    assert dense.density == 1.0 and "test_acc" in dense.metrics
    assert {"pruned_test_acc", "prune_wall_s", "prune_history"} <= set(ticket.metrics)
    assert not any("wall" in k for k in ticket.meta)  # timings are measurements, never what defines a ticket
    level_dir = tmp_path / "seed-0" / "level-1"
    assert (level_dir / "control-reinit.json").is_file() and (level_dir / "control-random.json").is_file()
    body = collect(tmp_path, hp.controls)
    row = next(r for r in body["levels"] if r["level"] == 1)
    assert row["density"] == pytest.approx(ticket.density)
    assert row["verdict"] in ("winning", "matches-dense", "below-dense")
    stamp = (level_dir / "ticket.json").stat().st_mtime_ns
    again = run_seed(tmp_path, hp, digits, spec, seed=0)  # resumes: the finished ticket is read, not redone
    assert (level_dir / "ticket.json").stat().st_mtime_ns == stamp and again.mask.kept == ticket.mask.kept


def test_settings_validate_and_stay_torch_free():
    with pytest.raises(UsageError, match="density"):
        BipHparams(density=1.0)
    with pytest.raises(UsageError, match="bilevel_optimizer"):
        BipHparams(bilevel_optimizer="adam")
    assert BipHparams().digest() == BipHparams(density=0.05).digest() != BipHparams(density=0.02).digest()
    code = "import sys, compress.bip.settings; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
