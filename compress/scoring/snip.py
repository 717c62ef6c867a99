"""SNIP connection sensitivity |theta * dL/dtheta| (Lee, Ajanthan & Torr, ICLR 2019).

The loss is the mean cross-entropy summed over the given batches; higher scores are kept. Under a
data-parallel job every rank scores its share of each batch and the gradients are all-reduced.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from compress.scoring.batches import Batch, batch_loss, require, working_copy


def snip(model: nn.Module, batches: Sequence[Batch] | None = None, **_: object) -> dict[str, torch.Tensor]:
    data = require("snip", batches)
    from compress.distributed import dispatch

    if dispatch.should_dispatch():  # data-parallel: each rank scores its share, gradients all-reduced
        return dispatch.call(_snip, (model, data))
    return _snip(model, data)


def _snip(model: nn.Module, data: list[Batch]) -> dict[str, torch.Tensor]:
    from compress.distributed import ops

    net, weights = working_copy(model)
    net.train()
    for x, y in data:
        batch_loss(net, x, y).backward()
    ops.all_reduce_grads(list(weights.values()))
    return {n: (w.detach() * w.grad).abs() if w.grad is not None else torch.zeros_like(w)
            for n, w in weights.items()}
