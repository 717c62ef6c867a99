"""When a structured method wins: it must beat every control on mean test accuracy over seeds.

Ye et al. (ICML 2020) claim greedy forward selection beats the same small network trained from scratch;
channel selection must also beat random channels and the standard L1-norm baseline (Li et al., ICLR 2017),
in the spirit of the sanity checks for unstructured tickets (Ma et al., NeurIPS 2021).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from compress.errors import UsageError


def _mean(xs: Sequence[float]) -> float:
    return float(statistics.fmean(xs))


def compare(method: Sequence[float], control: Sequence[float]) -> dict[str, Any]:
    """Mean difference (method - control) with its spread: per-seed differences when the seeds pair up (same
    count), else the two spreads; `min`/`max` of the per-seed differences bound what 3 seeds can say."""
    out: dict[str, Any] = {"method_mean": _mean(method), "control_mean": _mean(control),
                           "diff_mean": _mean(method) - _mean(control)}
    if len(method) == len(control):
        diffs = [a - b for a, b in zip(method, control, strict=True)]
        out.update({"diff_per_seed": diffs, "diff_min": min(diffs), "diff_max": max(diffs),
                    "diff_std": statistics.stdev(diffs) if len(diffs) > 1 else 0.0})
    else:
        out.update({"method_std": statistics.pstdev(method), "control_std": statistics.pstdev(control)})
    return out


def verdict(method: Sequence[float], controls: Mapping[str, Sequence[float]], margin: float = 0.0) -> dict[str, Any]:
    """`winning` is True only if the method's mean test accuracy exceeds every control's mean by more than
    `margin`; each comparison is reported with its per-seed spread."""
    if not method:
        raise UsageError("the verdict needs at least one test accuracy of the method.")
    empty = [k for k, v in controls.items() if not v]
    if empty or not controls:
        raise UsageError(f"the verdict needs results of every control; missing: {', '.join(empty) or 'all'}.")
    rows = {name: {**compare(method, accs), "beats": _mean(method) - _mean(accs) > margin}
            for name, accs in controls.items()}
    return {"winning": all(r["beats"] for r in rows.values()), "margin": margin, "controls": rows,
            "lost_to": sorted(n for n, r in rows.items() if not r["beats"])}


__all__ = ["compare", "verdict"]
