"""The Neumann-series hypergradient estimate (Ghadimi & Wang, 2018; stocBiO, Ji, Yang & Liang, ICML 2021),
the estimator MRBO and VRBO (Yang, Ji & Liang, NeurIPS 2021) use.

    dPhi/dx ~= grad_x f - grad_x grad_y g . v,   v = eta * sum_{q=0..Q} (I - eta * H)^q grad_y f,

with H = grad_yy g: a truncated Neumann series for H^{-1} grad_y f (exact as Q -> inf when
0 < eta < 1/L_g). Every H p and every grad_x grad_y g . v is one double backward through grad_y g:
no Hessian is ever formed.

Where this departs from the public code (JunjieYang97/MRVRBO, stocBiO.py): the code sums
eta * (last term) + (the Q later terms without eta); this sums all Q+1 terms times eta, the paper's
formula. One lower batch serves the Hessian products and the Jacobian term (the code draws two), so the
estimate at two points on the same batch is a clean difference for MRBO/VRBO's recursions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compress.bilevel.problem import Batch, BilevelProblem, Tensors, detached


def _grads(out: torch.Tensor | Tensors, inputs: Tensors, **kw: object) -> Tensors:
    gs = torch.autograd.grad(out, inputs, allow_unused=True, **kw)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(gs, inputs, strict=True)]


def lower_gradient(problem: BilevelProblem, x: Tensors, y: Tensors, lower: Batch) -> Tensors:
    """grad_y g(x, y; lower), detached."""
    xd, yd = [t.detach() for t in x], detached(y)
    return [g.detach() for g in _grads(problem.lower_loss(xd, yd, lower), yd)]


def neumann_hypergradient(problem: BilevelProblem, x: Tensors, y: Tensors, upper: Batch, lower: Batch,
                          eta: float, q: int) -> Tensors:
    """Estimate dPhi/dx at (x, y) with a Q-term Neumann series of step `eta` (Ji et al., 2021, eq. 3)."""
    return neumann_with_lower(problem, x, y, upper, lower, eta, q)[1]


def neumann_with_lower(problem: BilevelProblem, x: Tensors, y: Tensors, upper: Batch, lower: Batch,
                       eta: float, q: int) -> tuple[Tensors, Tensors]:
    """(grad_y g(x, y; lower), the Neumann hypergradient): the estimate already differentiates g on the
    lower batch, so the lower gradient comes free."""
    xd, yd = detached(x), detached(y)
    f = problem.upper_loss(xd, yd, upper)
    fg = _grads(f, xd + yd)
    fx, fy = fg[: len(xd)], [t.detach() for t in fg[len(xd):]]
    gy = _grads(problem.lower_loss(xd, yd, lower), yd, create_graph=True)
    p, total = fy, [t.clone() for t in fy]
    for _ in range(q):
        hp = _grads(gy, yd, grad_outputs=p, retain_graph=True)
        p = [pi - eta * hi.detach() for pi, hi in zip(p, hp, strict=True)]
        total = [a + b for a, b in zip(total, p, strict=True)]
    v = [eta * t for t in total]
    jv = _grads(gy, xd, grad_outputs=v)
    return [g.detach() for g in gy], [(a - b).detach() for a, b in zip(fx, jv, strict=True)]


@dataclass(frozen=True)
class NeumannOracle:
    """Lower gradient by autograd; hypergradient by the Neumann series with step `eta` and `q` terms."""

    eta: float = 0.5  # the public code's default
    q: int = 3

    def lower_grad(self, problem: BilevelProblem, x: Tensors, y: Tensors, lower: Batch) -> Tensors:
        return lower_gradient(problem, x, y, lower)

    def hypergrad(self, problem: BilevelProblem, x: Tensors, y: Tensors, upper: Batch, lower: Batch) -> Tensors:
        return neumann_hypergradient(problem, x, y, upper, lower, self.eta, self.q)

    def both(self, problem: BilevelProblem, x: Tensors, y: Tensors, upper: Batch,
             lower: Batch) -> tuple[Tensors, Tensors]:
        """(lower gradient, hypergradient) from one differentiation of g on the lower batch."""
        return neumann_with_lower(problem, x, y, upper, lower, self.eta, self.q)
