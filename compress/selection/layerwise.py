"""Layer-wise selection: each layer loses its own fraction of remaining weights (LTH paper, uniform rates)."""

from __future__ import annotations

import torch

from compress.mask import Mask
from compress.selection.topk import keep_top


def layerwise(scores: dict[str, torch.Tensor], mask: Mask, fractions: dict[str, float], **_: object) -> Mask:
    out = {}
    for name, m in mask.items():
        kept = int(m.sum())
        out[name] = keep_top(scores[name], m, kept - round(fractions.get(name, 0.0) * kept))
    return Mask(out)
