"""RigL's grow rule (Evci et al., "Rigging the Lottery: Making All Tickets Winners", ICML 2020).

Grow the inactive connections with the largest dense-gradient magnitude |dL/dw| on the current minibatch:
the gradient the loop computes before it masks it (compress.train.callbacks.Callback.before_step).
"""

from __future__ import annotations

import torch

NEEDS_GRADIENT = True


def grow_scores(weight: torch.Tensor, grad: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
    """|dense gradient|: the connections that would lower the loss fastest."""
    if grad is None:
        raise ValueError("RigL grows by the dense gradient, but this layer has no gradient at the update step")
    return grad.abs()
