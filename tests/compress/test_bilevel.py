"""Bilevel optimizers on a quadratic problem with a closed-form solution: each optimizer's iterates equal
its stated recursion (replayed by hand with the same batches and matrix-form gradients), and converge."""

from __future__ import annotations

import pytest
import torch

from compress.bilevel import MRBO, VRBO, MrboSettings, NeumannOracle, StocBiO, StocBiOSettings, VrboSettings
from compress.bilevel.hypergrad import neumann_hypergradient
from compress.bilevel.quadratic import QuadraticBilevel

DX, DY = 3, 4


class Recording(QuadraticBilevel):
    """The quadratic problem, logging every batch the optimizer draws, in order."""

    def __init__(self, base: QuadraticBilevel) -> None:
        super().__init__(base.a, base.b, base.c, base.mu, base.noise_g, base.noise_f)
        self.log: list[tuple[str, torch.Tensor]] = []

    def sample_lower(self, size, gen):
        b = super().sample_lower(size, gen)
        self.log.append(("g", b))
        return b

    def sample_upper(self, size, gen):
        b = super().sample_upper(size, gen)
        self.log.append(("f", b))
        return b


@pytest.fixture
def quad() -> Recording:
    return Recording(QuadraticBilevel.random(DX, DY, seed=3))


def _start() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(7)
    return [torch.randn(DX, generator=g, dtype=torch.float64)], [torch.randn(DY, generator=g, dtype=torch.float64)]


def test_neumann_estimate_equals_matrix_formula_and_tends_to_true_hypergradient(quad):
    x, y = _start()
    upper, lower = torch.arange(10), torch.arange(20)
    est = neumann_hypergradient(quad, x, y, upper, lower, eta=0.3, q=4)[0]
    assert torch.allclose(est, quad.neumann(x[0], y[0], upper, 0.3, 4), atol=1e-12)
    # At y = y*(x) on the whole pool, many terms give the true dPhi/dx = mu x + M'(Mx - c).
    xs = x[0]
    m = torch.linalg.solve(quad.a, quad.b)
    true = quad.mu * xs + m.T @ (m @ xs - quad.c)
    pool = torch.arange(len(quad.noise_f))
    est = neumann_hypergradient(quad, x, [quad.y_star(xs)], pool, pool, eta=0.5, q=80)[0]
    assert torch.allclose(est, true, atol=1e-8)


def test_stocbio_follows_its_recursion(quad):
    s = StocBiOSettings(lower_lr=0.4, upper_lr=0.3, inner_steps=3, batch_size=5, upper_batch_size=4)
    x, y = _start()
    opt = StocBiO(quad, x, y, s, NeumannOracle(0.5, 3), seed=1)
    for _ in range(4):
        opt.step()
    log = iter(quad.log)
    xs, ys = x[0], y[0]
    for _ in range(4):
        for _ in range(3):
            ys = ys - 0.4 * quad.lower_grad(xs, ys, next(log)[1])
        upper, _lower = next(log)[1], next(log)[1]
        xs = xs - 0.3 * quad.neumann(xs, ys, upper, 0.5, 3)
    assert torch.allclose(opt.x[0], xs, atol=1e-12) and torch.allclose(opt.y[0], ys, atol=1e-12)


def test_mrbo_follows_its_recursion(quad):
    s = MrboSettings(lower_lr=0.5, upper_lr=0.4, batch_size=5, upper_batch_size=4, m=4.0, c1=0.7, c2=0.6)
    x, y = _start()
    opt = MRBO(quad, x, y, s, NeumannOracle(0.5, 3), seed=2)
    steps = 6
    for _ in range(steps):
        opt.step()
    log = iter(quad.log)
    xs, ys, u, v = x[0], y[0], None, None
    alpha = beta = x_old = y_old = None
    for k in range(steps):
        lower, upper = next(log)[1], next(log)[1]  # the base class draws the lower batch first
        u_new, v_new = quad.lower_grad(xs, ys, lower), quad.neumann(xs, ys, upper, 0.5, 3)
        if k > 0:
            u_new = u_new + (1 - beta) * (u - quad.lower_grad(x_old, y_old, lower))
            v_new = v_new + (1 - alpha) * (v - quad.neumann(x_old, y_old, upper, 0.5, 3))
        u, v = u_new, v_new
        eta = 4.0 ** (1 / 3) / (4.0 + k) ** (1 / 3)
        x_old, y_old = xs, ys
        ys, xs = ys - 0.5 * eta * u, xs - 0.4 * eta * v
        alpha, beta = min(1.0, 0.7 * eta**2), min(1.0, 0.6 * eta**2)
    assert k == steps - 1 and 0 < alpha < 0.7 and 0 < beta < 0.6  # the momentum weights really decayed
    assert torch.allclose(opt.x[0], xs, atol=1e-12) and torch.allclose(opt.y[0], ys, atol=1e-12)


def test_vrbo_follows_its_recursion(quad):
    s = VrboSettings(lower_lr=0.3, upper_lr=0.2, period=2, inner_steps=2, large_batch=16, small_batch=3)
    x, y = _start()
    opt = VRBO(quad, x, y, s, NeumannOracle(0.5, 3), seed=3)
    steps = 5
    for _ in range(steps):
        opt.step()
    log = iter(quad.log)

    def both(xv, yv, upper, lower):
        return quad.lower_grad(xv, yv, lower), quad.neumann(xv, yv, upper, 0.5, 3)

    def draw():
        lower, upper = next(log)[1], next(log)[1]
        return upper, lower

    xs, ys = x[0], y[0]
    for k in range(steps):
        if k % 2 == 0:
            u, v = both(xs, ys, *draw())
            at = (xs, ys)  # the point the estimates track
        xs = xs - 0.2 * v
        for _ in range(3):  # SPIDER: every correction runs from the estimates' point to the current one
            upper, lower = draw()
            (u1, v1), (u0, v0) = both(xs, ys, upper, lower), both(*at, upper, lower)
            u, v, at = u + u1 - u0, v + v1 - v0, (xs, ys)
            ys = ys - 0.3 * u
    assert next(log, None) is None  # every drawn batch was replayed
    assert torch.allclose(opt.x[0], xs, atol=1e-12) and torch.allclose(opt.y[0], ys, atol=1e-12)


class FullBatch(QuadraticBilevel):
    """Every batch is the whole pool, so every stochastic gradient is the exact one."""

    def sample_lower(self, size, gen):
        return torch.arange(len(self.noise_g))

    def sample_upper(self, size, gen):
        return torch.arange(len(self.noise_f))


@pytest.fixture
def exact() -> FullBatch:
    q = QuadraticBilevel.random(DX, DY, seed=4)
    return FullBatch(q.a, q.b, q.c, q.mu, q.noise_g, q.noise_f)


def _exact_at(p: FullBatch, xv: torch.Tensor, yv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pool = torch.arange(len(p.noise_g))
    return p.lower_grad(xv, yv, pool), p.neumann(xv, yv, pool, 0.5, 3)


def test_mrbo_with_exact_gradients_is_gradient_descent_with_the_paper_schedule(exact):
    """STORM's estimates are exact when the gradients are (Yang et al., Alg. 1): MRBO is then simultaneous
    gradient descent with steps lambda eta_k and gamma eta_k, whatever the momentum weights."""
    x, y = _start()
    opt = MRBO(exact, x, y, MrboSettings(0.4, 0.3, 8, 8, m=3.0, c1=0.5, c2=0.2), NeumannOracle(0.5, 3))
    xs, ys = x[0], y[0]
    for k in range(6):
        opt.step()
        u, v = _exact_at(exact, xs, ys)
        assert torch.allclose(opt.u[0], u, atol=1e-12) and torch.allclose(opt.v[0], v, atol=1e-12)
        assert all(torch.allclose(a[0], b, atol=1e-12) for a, b in zip(opt.estimate_at, (xs, ys), strict=True))
        eta = 3.0 ** (1 / 3) / (3.0 + k) ** (1 / 3)
        xs, ys = xs - 0.3 * eta * v, ys - 0.4 * eta * u
    assert torch.allclose(opt.x[0], xs, atol=1e-12) and torch.allclose(opt.y[0], ys, atol=1e-12)


def test_vrbo_with_exact_gradients_tracks_them_between_refreshes(exact):
    """SPIDER's estimates are exact when the gradients are, at every inner step and across outer
    iterations without a refresh (period 4): no move of x or y may be left out of the recursion."""
    x, y = _start()
    opt = VRBO(exact, x, y, VrboSettings(0.3, 0.3, period=4, inner_steps=2, large_batch=8, small_batch=8),
               NeumannOracle(0.5, 3))
    xs, ys = x[0], y[0]
    at = (xs, ys)
    for k in range(7):
        opt.step()
        if k % 4 == 0:
            at = (xs, ys)  # refresh: the estimates are formed at the current point
        xs = xs - 0.3 * _exact_at(exact, *at)[1]  # otherwise at the last inner point, one lower step back
        for _ in range(3):
            u, v = _exact_at(exact, xs, ys)
            at, ys = (xs, ys), ys - 0.3 * u
        assert all(torch.allclose(a[0], b, atol=1e-11) for a, b in zip(opt.estimate_at, at, strict=True))
        assert torch.allclose(opt.u[0], u, atol=1e-11) and torch.allclose(opt.v[0], v, atol=1e-11)
    assert torch.allclose(opt.x[0], xs, atol=1e-11) and torch.allclose(opt.y[0], ys, atol=1e-11)


@pytest.mark.parametrize("name", ["stocbio", "mrbo", "vrbo"])
def test_optimizers_converge_to_the_closed_form_solution(name):
    p = QuadraticBilevel.random(DX, DY, n=64, noise=0.3, seed=5)
    x0, y0 = [torch.zeros(DX, dtype=torch.float64)], [torch.zeros(DY, dtype=torch.float64)]
    oracle = NeumannOracle(0.6, 12)  # |1 - 0.6 eig(A)| <= 0.4 for eig(A) in [1, 2]: bias ~ 0.4^13 ~ 7e-6
    opt = {"stocbio": StocBiO(p, x0, y0, StocBiOSettings(0.4, 0.3, 5, 16, 16), oracle, seed=0),
           "mrbo": MRBO(p, x0, y0, MrboSettings(0.4, 0.4, 16, 16, m=50.0), oracle, seed=0),
           "vrbo": VRBO(p, x0, y0, VrboSettings(0.3, 0.3, 4, 2, 64, 8), oracle, seed=0)}[name]
    xs = p.x_star()
    start = float((x0[0] - xs).norm())
    for _ in range(250):
        opt.step()
    assert float((opt.x[0] - xs).norm()) < 0.05 * start
    assert float((opt.y[0] - p.y_star(xs)).norm()) < 0.1 * float(p.y_star(xs).norm())


def test_flip_labels_moves_exactly_the_asked_fraction_to_other_classes():
    from compress.bilevel.hypercleaning import flip_labels

    y = torch.arange(200) % 10
    noisy = flip_labels(y, 0.2, 10, torch.Generator().manual_seed(0))
    assert int((noisy != y).sum()) == 40 and int(noisy.max()) < 10


def test_hypercleaning_learns_to_down_weight_flipped_samples(digits):
    from compress.bilevel.hypercleaning import HyperCleaning

    p = HyperCleaning.from_dataset(digits, 0.3, seed=0)
    x0, y0 = p.init(0)
    before = p.evaluate(x0, y0)
    opt = StocBiO(p, x0, y0, StocBiOSettings(lower_lr=0.3, upper_lr=300.0, inner_steps=5, batch_size=256,
                                             upper_batch_size=150), NeumannOracle(0.5, 3), seed=0)
    for _ in range(60):
        opt.step()
    after = p.evaluate(opt.x, opt.y)
    assert after["val_loss"] < 0.5 * before["val_loss"]
    assert after["weight_gap"] > 0.05  # clean samples now weigh more than flipped ones


def test_diagnostics_are_zero_for_exact_estimates_and_find_the_lower_curvature(exact):
    from compress.bilevel.diagnostics import difference_noise, estimate_errors, top_hessian_eigenvalue

    x, y = _start()
    opt = MRBO(exact, x, y, MrboSettings(0.4, 0.3, 8, 8), NeumannOracle(0.5, 3))
    for _ in range(3):
        opt.step()
    pool = (torch.arange(len(exact.noise_f)), torch.arange(len(exact.noise_g)))
    gen = torch.Generator().manual_seed(0)
    errors = estimate_errors(exact, *opt.estimate_at, opt.u, opt.v, pool, (5,), gen, 0.5, 3)
    assert max(errors.values()) < 1e-12 and set(errors) == {"u_error", "v_error", "fresh5_u_error", "fresh5_v_error"}
    noise = difference_noise(exact, (opt.x, opt.y), opt.estimate_at, pool, 5, 3, gen, 0.5, 3)
    assert max(noise.values()) < 1e-20
    lam = top_hessian_eigenvalue(exact, x, y, pool[1], iters=200)
    assert abs(lam - float(torch.linalg.eigvalsh(exact.a).max())) < 1e-8  # g's Hessian in y is A
