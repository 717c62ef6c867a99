"""Top-k selection among the weights a mask still keeps: shared by the layer-wise, global and ERK rules.

Deterministic: ties at the threshold keep the lowest positions, the same on every run and machine (as a
stable descending sort would), at the cost of a selection (`kthvalue`), not a sort: MPT re-selects on every
forward pass.
"""

from __future__ import annotations

import torch


def keep_top(scores: torch.Tensor, kept: torch.Tensor, k: int) -> torch.Tensor:
    """A bool mask keeping the `k` highest-scored positions among those `kept` (ties: lowest index first)."""
    flat = scores.detach().flatten()
    if not flat.is_floating_point():
        flat = flat.double()
    every = bool(kept.all())
    idx = None if every else kept.flatten().nonzero().squeeze(1)
    n = kept.numel() if idx is None else idx.numel()
    if k >= n:
        return kept.clone()
    if k <= 0:
        return torch.zeros_like(kept, dtype=torch.bool)
    vals = torch.nan_to_num(flat if idx is None else flat[idx], nan=-float("inf"))
    threshold = torch.kthvalue(vals, n - k + 1).values  # the k-th largest value
    above = vals > threshold
    ties = (vals == threshold).nonzero().squeeze(1)[: k - int(above.sum())]
    above[ties] = True
    if idx is None:
        return above.reshape(kept.shape)
    out = torch.zeros(kept.numel(), dtype=torch.bool)
    out[idx[above]] = True
    return out.reshape(kept.shape)
