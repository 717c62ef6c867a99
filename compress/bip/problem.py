"""BiP as a bilevel problem: scores (upper) choose a global top-k mask, weights (lower) train under it.

    min_s  F(s) = loss(m(s) * theta*(m(s)))            m(s) = global top-k of the scores s (exactly k ones)
    theta*(m) = argmin_theta loss(m * theta) + gamma/2 |theta|^2

The mask is a straight-through function of the scores (forward: the hard top-k mask; backward: identity),
as in BiP's public code (OPTML-Group/BiP, models/layers.py) and edge-popup.

Closed-form implicit gradient (BiP, Sec. 4): mask and weights enter bilinearly through z = m * theta, so
grad_theta loss = m * grad_z loss and, with the Hessian-free assumption grad_zz loss ~= 0 and
(grad_thetatheta loss + gamma I)^-1 ~= I / gamma,

    dF/dm = theta * grad_z loss - (1/gamma) * grad_z loss * (m * grad_z loss).

For a binary m the second term is -(1/gamma) * (grad_theta loss)^2 (zero on pruned weights). `scale`
replaces 1/gamma: BiP's public code uses a free coefficient (lr2 = 1e-4 on CIFAR) instead of 1/gamma.
Departure from that code: it multiplies the scores' gradient (theta * grad_z loss) by the weights'
gradient, an extra factor theta relative to the paper's formula; this follows the paper.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from compress.bilevel.hypergrad import lower_gradient
from compress.bilevel.problem import Tensors, detached
from compress.data import Dataset
from compress.mask import Mask
from compress.models import prunable


def mask_gradient(loss_of_z: Callable[[torch.Tensor], torch.Tensor], m: torch.Tensor, theta: torch.Tensor,
                  scale: float) -> torch.Tensor:
    """BiP's closed-form dF/dm at theta = theta*(m) for any (also relaxed) mask m: the formula above."""
    z = (m * theta).detach().requires_grad_(True)
    (gz,) = torch.autograd.grad(loss_of_z(z), z)
    return theta * gz - scale * gz * (m * gz)


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """A float 0/1 vector with ones at exactly the k highest scores."""
    out = torch.zeros_like(scores)
    out[torch.topk(scores.detach(), k, sorted=False).indices] = 1.0
    return out


class BipProblem:
    """x = [scores] (one flat vector over the prunable weights, in `prunable(model)` order);
    y = every parameter of `model` in `named_parameters` order. Batches are index tensors into the
    training split; both levels use the training loss, as in BiP."""

    def __init__(self, model: nn.Module, data: Dataset, k: int, gamma: float) -> None:
        self.model, self.data, self.k, self.gamma = model, data, k, gamma
        self.names = [n for n, _ in model.named_parameters()]
        weights = prunable(model)
        self.pruned = [(self.names.index(n), n, w.shape, w.numel()) for n, w in weights.items()]
        self.total = sum(p[3] for p in self.pruned)
        self._cache: list[tuple[torch.Tensor, int, torch.Tensor]] = []

    def params(self) -> Tensors:
        return [p.detach().clone() for p in self.model.parameters()]

    def weight_vector(self, y: Tensors) -> torch.Tensor:
        """The prunable weights of y as one flat vector (the scores' layout)."""
        return torch.cat([y[i].reshape(-1) for i, _, _, _ in self.pruned])

    def mask(self, scores: torch.Tensor) -> torch.Tensor:
        """The hard mask of `scores`, cached for the last few score tensors (MRBO asks twice per step)."""
        for s, version, m in self._cache:
            if s is scores and version == scores._version:
                return m
        m = top_k(scores, self.k)
        self._cache = [*self._cache[-2:], (scores, scores._version, m)]
        return m

    def logits(self, x: Tensors, y: Tensors, inputs: torch.Tensor) -> torch.Tensor:
        s = x[0]
        m = self.mask(s)
        if s.requires_grad:
            m = m + s - s.detach()  # straight-through: forward the hard mask, backward identity
        params = dict(zip(self.names, y, strict=True))
        offset = 0
        for i, name, shape, size in self.pruned:
            params[name] = y[i] * m[offset : offset + size].view(shape)
            offset += size
        return functional_call(self.model, params, (inputs,))

    def upper_loss(self, x: Tensors, y: Tensors, batch: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(x, y, self.data.x_train[batch]), self.data.y_train[batch])

    def lower_loss(self, x: Tensors, y: Tensors, batch: torch.Tensor) -> torch.Tensor:
        reg = 0.5 * self.gamma * sum((t**2).sum() for t in y) if self.gamma else 0.0
        return self.upper_loss(x, y, batch) + reg

    def sample_upper(self, size: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randint(len(self.data.y_train), (size,), generator=gen)

    def sample_lower(self, size: int, gen: torch.Generator) -> torch.Tensor:
        return self.sample_upper(size, gen)

    def to_mask(self, scores: torch.Tensor) -> Mask:
        m, out, offset = self.mask(scores).bool(), {}, 0
        for _, name, shape, size in self.pruned:
            out[name] = m[offset : offset + size].view(shape).clone()
            offset += size
        return Mask(out)


@dataclass(frozen=True)
class BipOracle:
    """Lower gradient by autograd; hypergradient by BiP's closed form (one backward, no Hessian)."""

    scale: float

    def lower_grad(self, problem: BipProblem, x: Tensors, y: Tensors, lower: torch.Tensor) -> Tensors:
        return lower_gradient(problem, x, y, lower)

    def _backward(self, problem: BipProblem, x: Tensors, y: Tensors, batch: torch.Tensor,
                  loss: Callable) -> tuple[torch.Tensor, Tensors]:
        xd, yd = detached(x), detached(y)
        g = torch.autograd.grad(loss(xd, yd, batch), xd + yd)
        return g[0], [t.detach() for t in g[1:]]

    def _hyper(self, problem: BipProblem, gs: torch.Tensor, g_theta: torch.Tensor) -> Tensors:
        return [gs - self.scale * g_theta * g_theta]

    def hypergrad(self, problem: BipProblem, x: Tensors, y: Tensors, upper: torch.Tensor,
                  lower: torch.Tensor) -> Tensors:
        gs, gy = self._backward(problem, x, y, upper, problem.upper_loss)
        return self._hyper(problem, gs, problem.weight_vector(gy))

    def both(self, problem: BipProblem, x: Tensors, y: Tensors, upper: torch.Tensor,
             lower: torch.Tensor) -> tuple[Tensors, Tensors]:
        """(lower gradient, hypergradient); one backward when both levels share the batch."""
        if upper is not lower:
            return self.lower_grad(problem, x, y, lower), self.hypergrad(problem, x, y, upper, lower)
        gs, gy = self._backward(problem, x, y, lower, problem.lower_loss)
        g_theta = problem.weight_vector(gy) - problem.gamma * problem.weight_vector(y)  # drop the L2 term
        return gy, self._hyper(problem, gs, g_theta)
