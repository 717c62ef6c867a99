"""Callbacks: the training loop's only extension point (house rule 2: the loop stays minimal).

`before_step` runs after `backward` and before the gradients are masked and the optimizer steps: the
gradients are still dense there (RigL grows by their magnitude), and `state.set_mask` may change the mask
(it zeroes newly pruned and newly grown weights and their optimizer state). Returning True skips this
iteration's optimizer step (RigL's Algorithm 1: a mask-update iteration replaces the weight update).
`after_step` runs once the iteration is counted. `state_dict` / `load_state_dict` carry a callback's
state through checkpoints: a flat dict of tensors and JSON values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from compress.mask import Mask
from compress.settings import TrainHparams
from compress.train.masking import Masked, change_mask, masked_params


@dataclass
class LoopState:
    """What a callback sees: the live model, optimizer, mask, and where training stands."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    hp: TrainHparams
    total: int
    step: int = 0  # iterations finished; inside before_step the running iteration is step + 1
    loss: torch.Tensor | None = None
    mask: Mask | None = None
    masked: Masked = field(default_factory=list)

    def set_mask(self, new: Mask) -> dict[str, tuple[int, int]]:
        """Train under `new` from now on; return per-layer (dropped, grown) counts."""
        if self.mask is None:
            raise ValueError("set_mask needs a training started with a mask")
        from compress.distributed import ops

        if ops.world() > 1:  # computed alike on every rank from all-reduced gradients: checked, rank 0's kept
            new = Mask(ops.agree("mask", dict(new)))
        counts = change_mask(self.model, self.optimizer, self.mask, new)
        self.mask = Mask(new)
        self.masked = masked_params(self.model, self.mask)
        return counts


class Callback:
    """Base class with no-op hooks; override the ones you need."""

    def before_step(self, state: LoopState) -> bool:
        return False

    def after_step(self, state: LoopState) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None
