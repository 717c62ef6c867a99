"""VRBO (Yang, Ji & Liang, "Provably Faster Algorithms for Bilevel Optimization", NeurIPS 2021, Algorithm 2).

SPIDER-style variance reduction in nested loops. Every q outer iterations the estimates are refreshed on a
large batch S1: v = dPhi^(x_k, y_k; S1), u = grad_y g(x_k, y_k; S1). Each outer iteration then steps
x_{k+1} = x_k - alpha * v and runs T + 1 recursive lower steps on small batches S2:

    t = 0:   v += dPhi^(x_{k+1}, y_k; S2) - dPhi^(x_k, y_k; S2)          (the move in x)
             u += grad_y g(x_{k+1}, y_k; S2) - grad_y g(x_k, y_k; S2)
    t >= 1:  v += dPhi^(x_{k+1}, y^t; S2) - dPhi^(x_{k+1}, y^{t-1}; S2)   (the moves in y)
             u += grad_y g(x_{k+1}, y^t; S2) - grad_y g(x_{k+1}, y^{t-1}; S2)
    y^{t+1} = y^t - beta * u,   y_{k+1} = y^{T+1}

The inner loop follows the structure of the public code's `vrbo` (JunjieYang97/MRVRBO); defaults too:
q = 3 (spider_epoch), T = iterations, S1 = 1000, S2 = 32 (spider_size). Departure: the code pairs the
small-batch weights with unrelated samples (slices of lambda not matching the batch); here every
difference is taken on one batch at two points, as SPIDER requires.
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
    """VRBO: variance-reduced bilevel optimizer (large-batch refresh, small-batch recursive steps)."""

    def __init__(self, problem: BilevelProblem, x: Tensors, y: Tensors, settings: VrboSettings | None = None,
                 oracle: Oracle | None = None, seed: int = 0) -> None:
        super().__init__(problem, x, y, oracle, seed)
        self.settings = settings or VrboSettings()
        self.u: Tensors = []
        self.v: Tensors = []

    def step(self) -> None:
        s = self.settings
        if self.iteration % s.period == 0:
            self.u, self.v = self.both(self.x, self.y, *self.batches(s.large_batch, s.large_batch, s.shared_batch))
        x_old = self.x
        self.x = axpy(-s.upper_lr, self.v, self.x)
        y_prev = x_prev = None
        for t in range(s.inner_steps + 1):
            upper, lower = self.batches(s.small_batch, s.small_batch, s.shared_batch)
            u_new, v_new = self.both(self.x, self.y, upper, lower)
            if t == 0:
                u_old, v_old = self.both(x_old, self.y, upper, lower)
            else:
                u_old, v_old = self.both(x_prev, y_prev, upper, lower)
            self.u, self.v = spider(self.u, u_new, u_old), spider(self.v, v_new, v_old)
            x_prev, y_prev = self.x, self.y
            self.y = axpy(-s.lower_lr, self.u, self.y)
        self.iteration += 1
