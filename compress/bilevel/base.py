"""State shared by the bilevel optimizers: the variables, the oracle, the sampler and a sample count."""

from __future__ import annotations

import torch

from compress.bilevel.hypergrad import NeumannOracle
from compress.bilevel.problem import Batch, BilevelProblem, Oracle, Tensors, batch_size


class BilevelOptimizer:
    """Holds x (upper) and y (lower) as detached tensors; `step()` runs one outer iteration in place.

    `samples` counts every sample drawn (upper and lower), the x-axis of the seed paper's sample plots;
    `iteration` counts outer iterations.
    """

    def __init__(self, problem: BilevelProblem, x: Tensors, y: Tensors, oracle: Oracle | None = None,
                 seed: int = 0) -> None:
        self.problem = problem
        self.oracle: Oracle = oracle if oracle is not None else NeumannOracle()
        self.x = [t.detach().clone() for t in x]
        self.y = [t.detach().clone() for t in y]
        self.gen = torch.Generator().manual_seed(seed)
        self.samples = 0
        self.iteration = 0

    def upper_batch(self, size: int) -> Batch:
        b = self.problem.sample_upper(size, self.gen)
        self.samples += batch_size(b)
        return b

    def lower_batch(self, size: int) -> Batch:
        b = self.problem.sample_lower(size, self.gen)
        self.samples += batch_size(b)
        return b

    def batches(self, lower_size: int, upper_size: int, shared: bool) -> tuple[Batch, Batch]:
        """(upper, lower) batches; with `shared`, one lower batch serves both levels (for problems whose two
        losses read the same samples, such as BiP's training loss at both levels)."""
        lower = self.lower_batch(lower_size)
        return (lower if shared else self.upper_batch(upper_size)), lower

    def both(self, x: Tensors, y: Tensors, upper: Batch, lower: Batch) -> tuple[Tensors, Tensors]:
        """(lower gradient, hypergradient) at (x, y); the oracle's `both` when it has one (one backward
        for a shared batch), else its two calls."""
        joint = getattr(self.oracle, "both", None)
        if joint is not None:
            return joint(self.problem, x, y, upper, lower)
        return (self.oracle.lower_grad(self.problem, x, y, lower),
                self.oracle.hypergrad(self.problem, x, y, upper, lower))

    def step(self) -> None:
        raise NotImplementedError
