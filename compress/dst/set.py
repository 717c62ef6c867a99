"""SET's grow rule (Mocanu et al., Nature Communications 2018): regrow inactive connections at random.

RigL's paper and the reproducibility study (Sundar & Dwaraknath, 2021) use it as the baseline with the
same drop rule and schedule as RigL; only the grow scores differ.
"""

from __future__ import annotations

import torch

NEEDS_GRADIENT = False


def grow_scores(weight: torch.Tensor, grad: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
    """Uniform random scores: every inactive connection is equally likely to be grown."""
    return torch.rand(weight.shape, generator=generator)
