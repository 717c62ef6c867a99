"""Global selection: one threshold over all pruned layers' scores (open_lth's default for IMP).

Layers with fraction 0 (excluded) are left alone; the pooled layers together lose the largest
fraction asked of any of them (per-layer rates do not apply under a single global threshold).
"""

from __future__ import annotations

import torch

from compress.mask import Mask
from compress.selection.topk import keep_top


def global_topk(scores: dict[str, torch.Tensor], mask: Mask, fractions: dict[str, float], **_: object) -> Mask:
    pooled = [n for n in mask if fractions.get(n, 0.0) > 0]
    out = {n: m.clone() for n, m in mask.items()}
    if not pooled:
        return Mask(out)
    frac = max(fractions[n] for n in pooled)
    flat_scores = torch.cat([scores[n].flatten().double() for n in pooled])
    flat_kept = torch.cat([mask[n].flatten() for n in pooled])
    kept = int(flat_kept.sum())
    keep = keep_top(flat_scores, flat_kept, kept - round(frac * kept))
    offset = 0
    for n in pooled:
        size = mask[n].numel()
        out[n] = keep[offset : offset + size].reshape(mask[n].shape)
        offset += size
    return Mask(out)
