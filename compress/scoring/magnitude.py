"""Magnitude scores |w| (Han et al., 2015; the LTH paper's pruning criterion)."""

from __future__ import annotations

import torch
from torch import nn

from compress.models import prunable


def magnitude(model: nn.Module, **_: object) -> dict[str, torch.Tensor]:
    return {n: w.detach().abs().clone() for n, w in prunable(model).items()}
