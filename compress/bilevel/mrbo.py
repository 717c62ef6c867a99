"""MRBO (Yang, Ji & Liang, "Provably Faster Algorithms for Bilevel Optimization", NeurIPS 2021, Algorithm 1).

Single loop, STORM-style recursive momentum on both the lower gradient u and the hypergradient v:

    u_k = grad_y g(x_k, y_k; B) + (1 - beta_k) (u_{k-1} - grad_y g(x_{k-1}, y_{k-1}; B))
    v_k = dPhi^(x_k, y_k; B')  + (1 - alpha_k) (v_{k-1} - dPhi^(x_{k-1}, y_{k-1}; B'))
    y_{k+1} = y_k - lambda * eta_k * u_k,     x_{k+1} = x_k - gamma * eta_k * v_k
    eta_k = t / (m + k)^(1/3),   alpha_{k+1} = c1 * eta_k^2,   beta_{k+1} = c2 * eta_k^2

(u_0, v_0 are plain stochastic gradients.) Each correction evaluates both points on the same batch, so with
exact gradients u_k and v_k are exact (tested). Defaults: t = m^(1/3) so eta_0 = 1; c1 = c2 = 0.9 and
lambda = gamma = 0.1, the public code's values (JunjieYang97/MRVRBO mnist_exp.py); m = 50.

What the public code actually runs differs from Algorithm 1: it re-assigns eta_k = 1, alpha_k = beta_k = 0.9
and m = 0.1 at the top of every iteration, so its schedule (eta_{k+1} = eta_k ((k+m)/(k+m+1))^(1/3),
alpha_k, beta_k multiplied by eta_k^2) is computed and discarded: it runs with constant eta = 1 and
alpha = beta = 0.9. Here that is the limit m -> inf (m = 1e9 keeps eta_k > 0.9999 for 10^5 iterations),
a member of the paper's family (m >= t^3). The code also moves y twice per iteration with the same u and
x twice with the same v (effective step sizes 2 lambda and 2 gamma), evaluates the hypergradient after the
first y move, and pairs the weights it updates with unrelated samples; none of that is reproduced.
The code's intended schedule (m = 0.1) decays eta to 0.21 by k = 10 and 0.046 by k = 1000.
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.bilevel.base import BilevelOptimizer
from compress.bilevel.problem import BilevelProblem, Oracle, Tensors, axpy, lin


@dataclass(frozen=True)
class MrboSettings:
    lower_lr: float = 0.1  # lambda
    upper_lr: float = 0.1  # gamma
    batch_size: int = 1000  # lower batch B (also the hypergradient's lower batch)
    upper_batch_size: int = 1000
    m: float = 50.0
    t: float | None = None  # None: m^(1/3), so eta_0 = 1
    c1: float = 0.9  # alpha_{k+1} = c1 eta_k^2 (hypergradient momentum weight)
    c2: float = 0.9  # beta_{k+1} = c2 eta_k^2 (lower-gradient momentum weight)
    shared_batch: bool = False  # one batch for both levels (problems whose f and g read the same samples)

    def eta(self, k: int) -> float:
        t = self.m ** (1 / 3) if self.t is None else self.t
        return t / (self.m + k) ** (1 / 3)


def storm(fresh: Tensors, previous_estimate: Tensors, fresh_at_old: Tensors, weight: float) -> Tensors:
    """STORM's recursion: fresh + (1 - weight) * (previous_estimate - fresh_at_old)."""
    return lin((1.0, fresh), (1.0 - weight, previous_estimate), (weight - 1.0, fresh_at_old))


class MRBO(BilevelOptimizer):
    """MRBO: momentum-based recursive bilevel optimizer (single loop).

    After each step, `u` and `v` estimate grad_y g and dPhi/dx at `estimate_at` = (x_old, y_old)."""

    def __init__(self, problem: BilevelProblem, x: Tensors, y: Tensors, settings: MrboSettings | None = None,
                 oracle: Oracle | None = None, seed: int = 0) -> None:
        super().__init__(problem, x, y, oracle, seed)
        self.settings = settings or MrboSettings()
        self.u: Tensors | None = None
        self.v: Tensors | None = None
        self.x_old: Tensors = self.x
        self.y_old: Tensors = self.y
        self.alpha = self.beta = 1.0  # momentum weights of the step being taken (1: no memory)

    def step(self) -> None:
        s, k = self.settings, self.iteration
        upper, lower = self.batches(s.batch_size, s.upper_batch_size, s.shared_batch)
        u, v = self.both(self.x, self.y, upper, lower)
        if self.u is not None and self.v is not None:
            u_old, v_old = self.both(self.x_old, self.y_old, upper, lower)
            u, v = storm(u, self.u, u_old, self.beta), storm(v, self.v, v_old, self.alpha)
        self.u, self.v = u, v
        eta = s.eta(k)
        self.x_old, self.y_old = self.x, self.y
        self.y = axpy(-s.lower_lr * eta, u, self.y)
        self.x = axpy(-s.upper_lr * eta, v, self.x)
        self.alpha, self.beta = min(1.0, s.c1 * eta**2), min(1.0, s.c2 * eta**2)
        self.iteration += 1

    @property
    def estimate_at(self) -> tuple[Tensors, Tensors]:
        return self.x_old, self.y_old
