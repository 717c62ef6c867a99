"""GraSP: gradient signal preservation (Wang, Zhang & Grosse, ICLR 2020).

Removing weights should not shrink the gradient norm. The paper scores S = -theta * (H g) and removes
the highest S; here the kept-is-higher convention returns theta * (H g). g is the gradient of the
loss summed over the batches, H g is one Hessian-gradient product by double backprop (the official
code's two passes), and the logits are divided by a temperature (200 in the official code) so the
softmax is not saturated at init.

The official code (alecwangcq/GraSP, `reinit=True`, the setting behind the paper's tables) scores a copy
of the network whose fully connected weights are redrawn Xavier-normal; theta and H g of those layers
come from the redrawn copy, and the mask is applied to the real init. `reinit_linear=True` (the default)
does the same, with a draw fixed by the seed; `False` scores the network's own linear weights.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from compress.scoring.batches import Batch, batch_loss, require, working_copy

_REDRAW_SEED = 0x6772617370  # "grasp": keeps the redraw's stream apart from the model's init stream


def hessian_gradient_product(model: nn.Module, batches: Sequence[Batch], temperature: float = 200.0
                             ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(g, H g) over the prunable weights of `model` for L = sum over batches of CE(model(x) / T, y).

    Under a data-parallel job each rank works on its share of every batch: g and H g are sums over samples,
    so the all-reduced shares are exactly the whole batches' (H g uses the all-reduced g)."""
    data = require("grasp", batches)
    from compress.distributed import dispatch

    if dispatch.should_dispatch():
        return dispatch.call(_hessian_gradient_product, (model, data, temperature))
    return _hessian_gradient_product(model, data, temperature)


def _hessian_gradient_product(model: nn.Module, data: list[Batch], temperature: float
                              ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    from compress.distributed import ops

    net, weights = working_copy(model)
    net.train()
    names, params = list(weights), list(weights.values())
    grads = [torch.zeros_like(p) for p in params]
    for x, y in data:
        gs = torch.autograd.grad(batch_loss(net, x, y, temperature), params)
        grads = [a + b.detach() for a, b in zip(grads, gs, strict=True)]
    ops.all_reduce_sum_(grads, "all-reducing GraSP's gradient")
    hg = [torch.zeros_like(p) for p in params]
    for x, y in data:
        gs = torch.autograd.grad(batch_loss(net, x, y, temperature), params, create_graph=True)
        z = sum((g * c).sum() for g, c in zip(gs, grads, strict=True))
        hs = torch.autograd.grad(z, params)
        hg = [a + b.detach() for a, b in zip(hg, hs, strict=True)]
    ops.all_reduce_sum_(hg, "all-reducing GraSP's Hessian-gradient product")
    return dict(zip(names, grads, strict=True)), dict(zip(names, hg, strict=True))


def redraw_linear(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of `model` whose nn.Linear weights are redrawn Xavier-normal (weights already zero, i.e.
    pruned, stay zero); `model` is untouched. The draw depends only on `seed` and the layer shapes."""
    net = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(_REDRAW_SEED + int(seed))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear):
                kept = m.weight != 0
                fresh = torch.empty(m.weight.shape, dtype=m.weight.dtype)
                nn.init.xavier_normal_(fresh, generator=gen)
                m.weight.copy_(fresh.to(m.weight.device) * kept)
    return net


def grasp(model: nn.Module, batches: Sequence[Batch] | None = None, temperature: float = 200.0,
          reinit_linear: bool = True, seed: int = 0, **_: object) -> dict[str, torch.Tensor]:
    data = require("grasp", batches)
    net = redraw_linear(model, seed) if reinit_linear else model
    _, hg = hessian_gradient_product(net, data, temperature)
    weights = {n: w.detach() for n, w in net.state_dict().items() if n in hg}
    return {n: weights[n] * hg[n] for n in hg}
