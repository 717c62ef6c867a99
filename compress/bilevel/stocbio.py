"""stocBiO (Ji, Yang & Liang, "Bilevel Optimization: Convergence Analysis and Enhanced Design", ICML 2021):
the SGD-style baseline the MRBO/VRBO paper compares against.

Per outer iteration k: T warm-started SGD steps on the lower problem,
    y^t = y^{t-1} - alpha * grad_y g(x_k, y^{t-1}; S_t),
then one hypergradient step x_{k+1} = x_k - beta * dPhi^(x_k, y^T) with the Neumann estimate
(`compress.bilevel.hypergrad`). Defaults follow the public code (JunjieYang97/MRVRBO mnist_exp.py):
alpha = beta = 0.1, batch 1000, eta 0.5, Q 3; its T = 200 is sized for 20,000 samples, so T is a
setting here.
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.bilevel.base import BilevelOptimizer
from compress.bilevel.problem import BilevelProblem, Oracle, Tensors, axpy


@dataclass(frozen=True)
class StocBiOSettings:
    lower_lr: float = 0.1  # alpha
    upper_lr: float = 0.1  # beta
    inner_steps: int = 10  # T
    batch_size: int = 1000  # lower batches S_t and the hypergradient's lower batch
    upper_batch_size: int = 1000  # D_F


class StocBiO(BilevelOptimizer):
    """stocBiO: warm-started inner SGD, then a Neumann-hypergradient step on x."""

    def __init__(self, problem: BilevelProblem, x: Tensors, y: Tensors, settings: StocBiOSettings | None = None,
                 oracle: Oracle | None = None, seed: int = 0) -> None:
        super().__init__(problem, x, y, oracle, seed)
        self.settings = settings or StocBiOSettings()

    def step(self) -> None:
        s = self.settings
        for _ in range(s.inner_steps):
            u = self.oracle.lower_grad(self.problem, self.x, self.y, self.lower_batch(s.batch_size))
            self.y = axpy(-s.lower_lr, u, self.y)
        v = self.oracle.hypergrad(self.problem, self.x, self.y, self.upper_batch(s.upper_batch_size),
                                  self.lower_batch(s.batch_size))
        self.x = axpy(-s.upper_lr, v, self.x)
        self.iteration += 1
