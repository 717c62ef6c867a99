"""RigL's update schedule (Evci et al., ICML 2020, eq. 1): when the mask changes and how much of it.

Every `delta_t` iterations while t < T_end, each sparse layer drops f(t) * (its active weights), with
f(t) = alpha / 2 * (1 + cos(pi * t / T_end)); from T_end on the mask is fixed (f = 0).
"""

from __future__ import annotations

import math


def end_iteration(t_end: float, total: int) -> int:
    """T_end in iterations: the last mask update happens before it."""
    return int(round(t_end * total))


def drop_fraction(t: int, alpha: float, t_end_iter: int) -> float:
    """f(t): the cosine-annealed fraction of active weights dropped at iteration t (0 from T_end on)."""
    if t >= t_end_iter or t_end_iter <= 0:
        return 0.0
    return alpha / 2 * (1 + math.cos(math.pi * t / t_end_iter))


def is_update(t: int, delta_t: int, t_end_iter: int) -> bool:
    """Whether iteration t (1-based) updates the mask (Algorithm 1: t mod ΔT = 0 and t < T_end)."""
    return t % delta_t == 0 and 0 < t < t_end_iter


def update_iterations(total: int, delta_t: int, t_end_iter: int) -> list[int]:
    """Every iteration in 1..total that updates the mask."""
    return [t for t in range(delta_t, min(total, t_end_iter - 1) + 1, delta_t) if is_update(t, delta_t, t_end_iter)]
