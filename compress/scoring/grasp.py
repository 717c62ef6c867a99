"""GraSP: gradient signal preservation (Wang, Zhang & Grosse, ICLR 2020).

Removing weights should not shrink the gradient norm. The paper scores S = -theta * (H g) and removes
the highest S; here the kept-is-higher convention returns theta * (H g). g is the gradient of the
loss summed over the batches, H g is one Hessian-gradient product by double backprop (the official
code's two passes), and the logits are divided by a temperature (200 in the official code) so the
softmax is not saturated at init.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from compress.scoring.batches import Batch, require, working_copy


def hessian_gradient_product(model: nn.Module, batches: Sequence[Batch], temperature: float = 200.0
                             ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(g, H g) over the prunable weights of `model` for L = sum over batches of CE(model(x) / T, y)."""
    data = require("grasp", batches)
    net, weights = working_copy(model)
    net.train()
    names, params = list(weights), list(weights.values())
    grads = [torch.zeros_like(p) for p in params]
    for x, y in data:
        gs = torch.autograd.grad(F.cross_entropy(net(x) / temperature, y), params)
        grads = [a + b.detach() for a, b in zip(grads, gs, strict=True)]
    hg = [torch.zeros_like(p) for p in params]
    for x, y in data:
        gs = torch.autograd.grad(F.cross_entropy(net(x) / temperature, y), params, create_graph=True)
        z = sum((g * c).sum() for g, c in zip(gs, grads, strict=True))
        hs = torch.autograd.grad(z, params)
        hg = [a + b.detach() for a, b in zip(hg, hs, strict=True)]
    return dict(zip(names, grads, strict=True)), dict(zip(names, hg, strict=True))


def grasp(model: nn.Module, batches: Sequence[Batch] | None = None, temperature: float = 200.0,
          **_: object) -> dict[str, torch.Tensor]:
    _, hg = hessian_gradient_product(model, require("grasp", batches), temperature)
    weights = {n: w.detach() for n, w in model.state_dict().items() if n in hg}
    return {n: weights[n] * hg[n] for n in hg}
