"""Top-k selection among the weights a mask still keeps: shared by the layer-wise and global rules."""

from __future__ import annotations

import torch


def keep_top(scores: torch.Tensor, kept: torch.Tensor, k: int) -> torch.Tensor:
    """A bool mask keeping the `k` highest-scored positions among those `kept` (ties: lowest index first)."""
    idx = kept.flatten().nonzero().squeeze(1)
    out = torch.zeros(kept.numel(), dtype=torch.bool)
    if k > 0:
        vals = torch.nan_to_num(scores.flatten()[idx].double(), nan=-float("inf"))
        # A stable descending sort makes ties deterministic across runs and machines.
        order = torch.sort(vals, descending=True, stable=True).indices[:k]
        out[idx[order]] = True
    return out.reshape(kept.shape)
