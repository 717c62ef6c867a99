"""Gates: a stage's measured metric against an allowed value, some relative to the dense baseline.

| gate                | measured                                   | passes when        |
|---------------------|--------------------------------------------|--------------------|
| `max_acc_drop`      | baseline test_acc - stage test_acc         | measured <= value  |
| `min_acc`           | stage test_acc                             | measured >= value  |
| `min_agreement`     | stage agreement (top-1 equal to baseline)  | measured >= value  |
| `min_parity`        | stage parity_agreement (artifact vs its PyTorch model) | measured >= value |
| `max_latency_ratio` | stage latency_ratio (vs baseline, same target) | measured <= value |
| `max_latency_ms`    | stage latency_ms_p50                       | measured <= value  |
| `max_parity_diff`   | stage parity_max_abs_diff (largest output difference vs its PyTorch model) | measured <= value |
| `min_packed_fraction` | stage packed_fraction (1-bit layers LCE bit-packs) | measured >= value |
| `max_storage_bytes` | stage storage_bytes (kept weights at their bit width + 1-bit mask) | measured <= value |
| `min_storage_ratio` | baseline storage_bytes / stage storage_bytes | measured >= value |
| `max_file_bytes`    | stage file_bytes (the artifact's bytes on disk) | measured <= value |
| `min_file_ratio`    | baseline file_bytes / stage file_bytes (dense weights file vs artifact) | measured >= value |
| `max_density`       | stage density                              | measured <= value  |

Two size kinds, never mixed: `storage_bytes` is a storage model of a ticket, `file_bytes` bytes on disk; a size
gate compares one kind with the baseline's value of the same kind.

Comparisons allow 1e-9 of float rounding, so `max_acc_drop = 0.01` passes a drop of exactly one point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from compress.errors import UsageError

EPS = 1e-9


@dataclass(frozen=True)
class Gate:
    name: str
    metric: str               # the stage metric the gate reads
    upper: bool               # True: measured must be <= allowed; False: >= allowed
    baseline: bool            # needs the dense baseline's value of `metric`
    lo: float                 # valid range of the allowed value
    hi: float
    measure: Callable[[float, float | None], float]
    description: str


def _own(x: float, _b: float | None) -> float:
    return x


def _ratio(x: float, b: float | None) -> float:
    return (b or 0.0) / x if x else float("inf")


GATES: dict[str, Gate] = {g.name: g for g in (
    Gate("max_acc_drop", "test_acc", True, True, 0.0, 1.0, lambda x, b: b - x,
         "largest allowed drop of test accuracy below the dense baseline (fraction, 0.01 = 1 point)"),
    Gate("min_acc", "test_acc", False, False, 0.0, 1.0, _own, "lowest allowed test accuracy (fraction)"),
    Gate("min_agreement", "agreement", False, False, 0.0, 1.0, _own,
         "lowest allowed fraction of test samples with the baseline's top-1 class"),
    Gate("min_parity", "parity_agreement", False, False, 0.0, 1.0, _own,
         "lowest allowed fraction of test samples where an exported artifact's top-1 equals its PyTorch model's"),
    Gate("max_latency_ratio", "latency_ratio", True, False, 0.0, float("inf"), _own,
         "largest allowed latency / the baseline's latency on the same target"),
    Gate("max_latency_ms", "latency_ms_p50", True, False, 0.0, float("inf"), _own,
         "largest allowed median latency in ms"),
    Gate("max_parity_diff", "parity_max_abs_diff", True, False, 0.0, float("inf"), _own,
         "largest allowed absolute difference between an artifact's outputs and its PyTorch model's"),
    Gate("min_packed_fraction", "packed_fraction", False, False, 0.0, 1.0, _own,
         "lowest allowed fraction of 1-bit layers that the LCE export bit-packs"),
    Gate("max_storage_bytes", "storage_bytes", True, False, 0.0, float("inf"), _own,
         "largest allowed storage size in bytes (kept weights at their bit width + 1-bit mask)"),
    Gate("min_storage_ratio", "storage_bytes", False, True, 0.0, float("inf"), _ratio,
         "smallest allowed baseline storage / stage storage (4 = at least 4x smaller)"),
    Gate("max_file_bytes", "file_bytes", True, False, 0.0, float("inf"), _own,
         "largest allowed artifact size on disk in bytes"),
    Gate("min_file_ratio", "file_bytes", False, True, 0.0, float("inf"), _ratio,
         "smallest allowed baseline file bytes / artifact file bytes (4 = at least 4x smaller)"),
    Gate("max_density", "density", True, False, 0.0, 1.0, _own, "largest allowed fraction of weights kept"),
)}


def get(name: str) -> Gate:
    if name not in GATES:
        from compress.errors import UnknownNameError

        raise UnknownNameError("gate", name, GATES)
    return GATES[name]


def check_value(name: str, value: Any, where: str) -> float:
    """The allowed value of gate `name`, validated (a number inside the gate's range)."""
    g = get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"gate '{where}' must be a number, got {value!r}.")
    if not g.lo <= float(value) <= g.hi:
        raise UsageError(f"gate '{where}' must be in [{g.lo}, {g.hi}] ({g.description}); got {value}.")
    return float(value)


def valid_for(metrics: tuple[str, ...]) -> list[str]:
    """Gates usable on a stage that reports `metrics`."""
    return [n for n, g in GATES.items() if g.metric in metrics]


def evaluate(gates: dict[str, float], metrics: dict[str, Any], baseline: dict[str, Any] | None) -> list[dict]:
    """One verdict per gate: {gate, metric, measured, allowed, passed, detail}."""
    out = []
    for name, allowed in gates.items():
        g = get(name)
        value = metrics.get(g.metric)
        base = (baseline or {}).get(g.metric) if g.baseline else None
        if value is None or (g.baseline and base is None):
            missing = f"baseline {g.metric}" if value is not None else g.metric
            out.append({"gate": name, "metric": g.metric, "measured": None, "allowed": allowed, "passed": False,
                        "detail": f"{missing} was not measured"})
            continue
        measured = float(g.measure(float(value), None if base is None else float(base)))
        passed = measured <= allowed + EPS if g.upper else measured >= allowed - EPS
        op = "<=" if g.upper else ">="
        out.append({"gate": name, "metric": g.metric, "measured": measured, "allowed": allowed, "passed": passed,
                    "detail": f"{name}: measured {measured:.6g} {op} allowed {allowed:.6g}"
                              + ("" if passed else " FAILED")})
    return out


def verdict(results: list[dict]) -> str:
    """`pass` when every gate passed (or there is none), else `fail`."""
    return "pass" if all(r["passed"] for r in results) else "fail"
