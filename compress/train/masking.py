"""Masked updates: the invariant "pruned weights and their optimizer state are exactly zero", kept cheaply.

Masking only the gradients keeps the invariant once it holds: with a zero gradient and a zero weight, SGD
(momentum, Nesterov, L2 weight decay), Adam and AdamW all compute a zero update and leave zero state
(momentum = mu * 0 + 0; Adam's moments stay 0 and 0 / (sqrt(0) + eps) = 0; decoupled decay scales 0).
So a masked step costs one fused `torch._foreach_mul_` over the masked gradients, instead of multiplying
gradients, weights and every state tensor. `remask` establishes the invariant (at the start of training)
and `change_mask` re-establishes it when a mask changes mid-training (dynamic sparse training).
"""

from __future__ import annotations

import torch
from torch import nn

from compress.mask import Mask
from compress.models import prunable

Masked = list[tuple[torch.Tensor, torch.Tensor]]  # (weight, float mask) of every layer the mask prunes


def masked_params(model: nn.Module, mask: Mask | None) -> Masked:
    """(weight, float mask) for every layer where `mask` removes something (fully kept layers cost nothing)."""
    if mask is None:
        return []
    mask.check(model)
    weights = prunable(model)
    return [(weights[n], m.to(weights[n].dtype)) for n, m in mask.items() if not bool(m.all())]


def mask_grads(masked: Masked) -> None:
    """Zero the gradients of pruned weights in one fused call."""
    pairs = [(p.grad, m) for p, m in masked if p.grad is not None]
    if pairs:
        grads, masks = zip(*pairs, strict=True)
        torch._foreach_mul_(list(grads), list(masks))


def _state_tensors(opt: torch.optim.Optimizer, p: torch.Tensor) -> list[torch.Tensor]:
    return [v for v in opt.state.get(p, {}).values() if isinstance(v, torch.Tensor) and v.shape == p.shape]


@torch.no_grad()
def remask(opt: torch.optim.Optimizer, masked: Masked) -> None:
    """Zero pruned weights and their per-weight optimizer state (momentum, Adam moments)."""
    for p, m in masked:
        p.mul_(m)
        for value in _state_tensors(opt, p):
            value.mul_(m)


@torch.no_grad()
def change_mask(model: nn.Module, opt: torch.optim.Optimizer, old: Mask, new: Mask) -> dict[str, tuple[int, int]]:
    """Switch from `old` to `new` mid-training; return per-layer (dropped, grown) counts.

    Newly pruned weights and newly grown ones are set to zero with zero optimizer state: a grown weight
    starts at 0 with its momentum and Adam moments reset (RigL, Evci et al. 2020), and every pruned
    position satisfies the invariant again, so gradient-only masking stays exact afterwards.
    """
    if new.keys() != old.keys():
        raise ValueError(f"a mask change must keep the same layers: {sorted(old)} -> {sorted(new)}")
    new.check(model)
    weights = prunable(model)
    counts: dict[str, tuple[int, int]] = {}
    for name, keep in new.items():
        changed = old[name] ^ keep
        if not bool(changed.any()):
            counts[name] = (0, 0)
            continue
        p = weights[name]
        p.masked_fill_(changed, 0.0)
        for value in _state_tensors(opt, p):
            value.masked_fill_(changed, 0.0)
        counts[name] = (int((old[name] & ~keep).sum()), int((keep & ~old[name]).sum()))
    return counts
