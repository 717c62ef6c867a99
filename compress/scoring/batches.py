"""Helpers for data-driven scorers: checking the batches they were given, a working copy of the net."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from compress.errors import UsageError
from compress.models import prunable

Batch = tuple[torch.Tensor, torch.Tensor]


def batch_loss(net: nn.Module, x: torch.Tensor, y: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Mean cross-entropy of one batch, or under a data-parallel job this rank's part of it (its share of the
    rows, summed and divided by the whole batch's size): the ranks' gradients then sum to the batch's."""
    import torch.nn.functional as F

    from compress.distributed import ops

    if ops.world() == 1:
        return F.cross_entropy(net(x) / temperature, y)
    rows = ops.share(torch.arange(len(y)))
    return F.cross_entropy(net(x[rows]) / temperature, y[rows], reduction="sum") / len(y)


def require(name: str, batches: Sequence[Batch] | None) -> list[Batch]:
    """The batches as a list, or a `UsageError` when a data-driven scorer got none."""
    got = list(batches or [])
    if not got or any(len(y) == 0 for _, y in got):
        raise UsageError(f"scorer '{name}' needs data: give it at least one non-empty batch of training samples "
                         "(score_batches >= 1 and a dataset with training samples). SynFlow, random and "
                         "magnitude need no data.")
    return got


def working_copy(model: nn.Module, dtype: torch.dtype | None = None) -> tuple[nn.Module, dict[str, nn.Parameter]]:
    """A deep copy (the caller's weights and grads stay untouched) and its prunable weights."""
    net = copy.deepcopy(model)
    if dtype is not None:
        net = net.to(dtype)
    for p in net.parameters():
        p.requires_grad_(True)
        p.grad = None
    return net, prunable(net)
