"""Random scores (uniform in [0, 1)): the baseline every pruning-at-init method must beat
(Frankle et al., ICLR 2021, "Pruning neural networks at initialization: why are we missing the mark?")."""

from __future__ import annotations

import torch
from torch import nn

from compress.models import prunable


def random_scores(model: nn.Module, seed: int = 0, **_: object) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand(w.shape, generator=g) for n, w in prunable(model).items()}
