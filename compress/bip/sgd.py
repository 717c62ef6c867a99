"""BiP's own bilevel update (Zhang et al., NeurIPS 2022, Algorithm 1; OPTML-Group/BiP trainer/bilevel.py).

Per step: one SGD step on the weights under the current mask (lower level, its own minibatch), then one
SGD step on the scores with the closed-form implicit gradient (upper level, another minibatch). Both use
heavy-ball momentum and a cosine learning-rate decay over the pruning phase (BiP: cosine for the weights;
a step schedule for the scores, replaced by the same cosine here).
"""

from __future__ import annotations

import math

import torch

from compress.bilevel.base import BilevelOptimizer
from compress.bilevel.problem import BilevelProblem, Oracle, Tensors


class BipSGD(BilevelOptimizer):
    """Alternating SGD: weights with grad_theta g, scores with the oracle's hypergradient."""

    def __init__(self, problem: BilevelProblem, x: Tensors, y: Tensors, oracle: Oracle, lower_lr: float,
                 upper_lr: float, momentum: float, batch_size: int, total_steps: int, seed: int = 0) -> None:
        super().__init__(problem, x, y, oracle, seed)
        self.x = [t.requires_grad_(False) for t in self.x]
        self.y = [t.requires_grad_(False) for t in self.y]
        self.batch_size = batch_size
        self.opt_y = torch.optim.SGD(self.y, lr=lower_lr, momentum=momentum)
        self.opt_x = torch.optim.SGD(self.x, lr=upper_lr, momentum=momentum)
        cosine = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / max(1, total_steps)))  # noqa: E731
        self.sched = [torch.optim.lr_scheduler.LambdaLR(o, cosine) for o in (self.opt_y, self.opt_x)]

    @torch.no_grad()
    def _apply(self, opt: torch.optim.Optimizer, params: Tensors, grads: Tensors) -> None:
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        opt.step()

    def step(self) -> None:
        u = self.oracle.lower_grad(self.problem, self.x, self.y, self.lower_batch(self.batch_size))
        self._apply(self.opt_y, self.y, u)
        upper = self.upper_batch(self.batch_size)
        v = self.oracle.hypergrad(self.problem, self.x, self.y, upper, upper)
        self._apply(self.opt_x, self.x, v)
        for s in self.sched:
            s.step()
        self.iteration += 1
