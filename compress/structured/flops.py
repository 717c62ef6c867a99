"""FLOPs of a model for one input shape, with PyTorch's own counter (`torch.utils.flop_counter`).

The counter counts matrix multiplies and convolutions (2 FLOPs per multiply-add), the work that shrinking
removes; elementwise ops (ReLU, BatchNorm in eval, pooling) are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from compress.structured.units import eval_mode


@dataclass(frozen=True)
class FlopCount:
    total: int
    per_layer: dict[str, int]  # leaf module name -> FLOPs (modules with counted ops only)

    def ratio_to(self, other: FlopCount) -> float:
        return self.total / other.total if other.total else float("nan")


def flops(model: nn.Module, input_shape: tuple[int, ...], batch: int = 1) -> FlopCount:
    """Total and per-layer FLOPs of one forward of `batch` samples of `input_shape` (eval mode, no grad)."""
    counter = FlopCounterMode(display=False)
    with eval_mode(model), torch.no_grad(), counter:
        model(torch.zeros(batch, *input_shape))
    counts = counter.get_flop_counts()
    leaves = {n for n, m in model.named_modules() if n and not list(m.children())}
    per_layer = {}
    for key, ops in counts.items():
        _, _, name = key.partition(".")
        if name in leaves:
            per_layer[name] = int(sum(ops.values()))
    return FlopCount(int(counter.get_total_flops()), per_layer)


__all__ = ["FlopCount", "flops"]
