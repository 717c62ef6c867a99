"""The bilevel problem protocol and the gradient oracles the optimizers call.

A problem holds data and defines two losses over the upper variables x and the lower variables y (each a
list of tensors): f(x, y; batch) (upper) and g(x, y; batch) (lower), and draws batches for each. An
`Oracle` turns a problem into the two stochastic gradients every optimizer here needs: the lower gradient
grad_y g and an estimate of the hypergradient dPhi/dx. The default oracle is the Neumann series
(`compress.bilevel.hypergrad.NeumannOracle`); a problem with a closed form (BiP's bilinear mask * weight
structure) brings its own.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

Tensors = list[torch.Tensor]
Batch = Any


class BilevelProblem(Protocol):
    """min_x f(x, y*(x)) with y*(x) = argmin_y g(x, y); both losses are averages over samples."""

    def upper_loss(self, x: Tensors, y: Tensors, batch: Batch) -> torch.Tensor:
        """f(x, y; batch): a scalar."""
        ...

    def lower_loss(self, x: Tensors, y: Tensors, batch: Batch) -> torch.Tensor:
        """g(x, y; batch): a scalar, strongly convex in y for the theory to hold."""
        ...

    def sample_upper(self, size: int, gen: torch.Generator) -> Batch:
        """A batch of `size` samples for f."""
        ...

    def sample_lower(self, size: int, gen: torch.Generator) -> Batch:
        """A batch of `size` samples for g."""
        ...


class Oracle(Protocol):
    """Stochastic gradients of a bilevel problem at (x, y) on given batches."""

    def lower_grad(self, problem: BilevelProblem, x: Tensors, y: Tensors, lower: Batch) -> Tensors:
        """grad_y g(x, y; lower)."""
        ...

    def hypergrad(self, problem: BilevelProblem, x: Tensors, y: Tensors, upper: Batch, lower: Batch) -> Tensors:
        """An estimate of dPhi/dx at (x, y)."""
        ...


def batch_size(batch: Batch) -> int:
    """Samples in a batch: its `len`, or the length of its first element (an (inputs, labels, ...) tuple)."""
    if isinstance(batch, tuple | list):
        return len(batch[0])
    return len(batch)


def detached(ts: Tensors) -> Tensors:
    """Leaf copies that record gradients: the variables an oracle differentiates."""
    return [t.detach().requires_grad_(True) for t in ts]


def axpy(a: float, xs: Tensors, ys: Tensors) -> Tensors:
    """ys + a * xs, element by element."""
    return [y + a * x for x, y in zip(xs, ys, strict=True)]


def lin(*terms: tuple[float, Tensors]) -> Tensors:
    """sum_i c_i * T_i over lists of tensors of matching shapes."""
    out = [terms[0][0] * t for t in terms[0][1]]
    for c, ts in terms[1:]:
        out = [o + c * t for o, t in zip(out, ts, strict=True)]
    return out


def norm(ts: Tensors) -> float:
    return float(torch.sqrt(sum((t.detach().double() ** 2).sum() for t in ts)))
