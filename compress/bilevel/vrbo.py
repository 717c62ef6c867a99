"""VRBO (Yang, Ji & Liang, "Provably Faster Algorithms for Bilevel Optimization", NeurIPS 2021, Algorithm 2).

SPIDER-style variance reduction in nested loops. Every q outer iterations the estimates are refreshed on a
large batch S1: v = dPhi^(x_k, y_k; S1), u = grad_y g(x_k, y_k; S1). Each outer iteration then steps
x_{k+1} = x_k - alpha * v and runs T + 1 recursive lower steps on small batches S2:

    v += dPhi^(x_{k+1}, y^t; S2) - dPhi^(p; S2),   u += grad_y g(x_{k+1}, y^t; S2) - grad_y g(p; S2)
    y^{t+1} = y^t - beta * u,   y_{k+1} = y^{T+1}

where p is the point the current estimates were formed at (SPIDER's definition: every difference is taken
between consecutive points of one path): at t = 0 it is (x_k, y_k) after a refresh, else the last inner
point of the previous outer iteration (x_k, y_{k-1}^T); at t >= 1 it is (x_{k+1}, y^{t-1}). With exact
gradients the estimates are then exact at every step (tested), as the paper's variance bound assumes.

Defaults follow the public code (JunjieYang97/MRVRBO mnist_exp.py): q = 3 (spider_epoch), S1 = 1000
(batch_size), S2 = 32 (spider_size); its T (`iterations`) defaults to 200, shared with stocBiO, and its README
figures use T = 1..100, so T is a setting (default 3). Departures from that code: (1) it differences the
first inner step of each outer iteration against (x_k, y_k^{T+1}) although its estimates were formed at
(x_k, y_k^T), so each outer iteration drops the last lower move from the recursion and the estimates drift
from the gradients they track until the next refresh (an earlier version here copied this); (2) it pairs
the small-batch weights with unrelated samples (slices of lambda not matching the batch); here every
difference is taken on one batch at two points; (3) it steps x after the inner loop with the final
estimate, here before it with the current one (the same interleaving, shifted by one half-iteration).
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.bilevel.base import BilevelOptimizer
from compress.bilevel.problem import BilevelProblem, Oracle, Tensors, axpy, lin


@dataclass(frozen=True)
class VrboSettings:
    lower_lr: float = 0.1  # beta
    upper_lr: float = 0.1  # alpha
    period: int = 3  # q: large-batch refresh every q outer iterations
    inner_steps: int = 3  # T: recursive lower steps after the x-move step
    large_batch: int = 1000  # S1
    small_batch: int = 32  # S2
    shared_batch: bool = False  # one batch for both levels (problems whose f and g read the same samples)


def spider(estimate: Tensors, new: Tensors, old: Tensors) -> Tensors:
    """SPIDER's recursion: estimate + new - old."""
    return lin((1.0, estimate), (1.0, new), (-1.0, old))


class VRBO(BilevelOptimizer):
    """VRBO: variance-reduced bilevel optimizer (large-batch refresh, small-batch recursive steps).

    After each step, `u` and `v` estimate grad_y g and dPhi/dx at `estimate_at` = (x, y)."""

    def __init__(self, problem: BilevelProblem, x: Tensors, y: Tensors, settings: VrboSettings | None = None,
                 oracle: Oracle | None = None, seed: int = 0) -> None:
        super().__init__(problem, x, y, oracle, seed)
        self.settings = settings or VrboSettings()
        self.u: Tensors = []
        self.v: Tensors = []
        self.estimate_at: tuple[Tensors, Tensors] = (self.x, self.y)

    def step(self) -> None:
        s = self.settings
        if self.iteration % s.period == 0:
            self.u, self.v = self.both(self.x, self.y, *self.batches(s.large_batch, s.large_batch, s.shared_batch))
            self.estimate_at = (self.x, self.y)
        self.x = axpy(-s.upper_lr, self.v, self.x)
        for _ in range(s.inner_steps + 1):
            upper, lower = self.batches(s.small_batch, s.small_batch, s.shared_batch)
            u_new, v_new = self.both(self.x, self.y, upper, lower)
            u_old, v_old = self.both(*self.estimate_at, upper, lower)
            self.u, self.v = spider(self.u, u_new, u_old), spider(self.v, v_new, v_old)
            self.estimate_at = (self.x, self.y)
            self.y = axpy(-s.lower_lr, self.u, self.y)
        self.iteration += 1
