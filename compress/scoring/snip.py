"""SNIP connection sensitivity |theta * dL/dtheta| (Lee, Ajanthan & Torr, ICLR 2019).

The loss is the mean cross-entropy summed over the given batches; higher scores are kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from compress.scoring.batches import Batch, require, working_copy


def snip(model: nn.Module, batches: Sequence[Batch] | None = None, **_: object) -> dict[str, torch.Tensor]:
    data = require("snip", batches)
    net, weights = working_copy(model)
    net.train()
    for x, y in data:
        F.cross_entropy(net(x), y).backward()
    return {n: (w.detach() * w.grad).abs() if w.grad is not None else torch.zeros_like(w)
            for n, w in weights.items()}
