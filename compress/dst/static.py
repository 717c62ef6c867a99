"""Static sparse training: the random starting mask (ERK or uniform densities) never changes.

The lower baseline of RigL's paper and of the reproducibility study (Sundar & Dwaraknath, 2021).
"""

from __future__ import annotations

NEEDS_GRADIENT = False
grow_scores = None  # no mask updates
