"""Shared pieces of the seeded fuzz tests: hypothesis settings and byte-level file corruption."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Seeded and bounded: the same examples on every run, no example database, no per-example deadline.
FUZZ = settings(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NAN32 = np.array([np.nan], np.float32).tobytes()


def byte_damage(*kinds: str) -> st.SearchStrategy[tuple[str, float, int]]:
    """(kind, position as a fraction of the file, xor mask); kinds among truncate, flip, nan."""
    return st.tuples(st.sampled_from(kinds), st.floats(0, 1, exclude_max=True), st.integers(1, 255))


def damage(data: bytes, how: tuple[str, float, int]) -> bytes:
    """`data` cut at the position, one byte there xor-ed with the mask, or a float32 NaN written over the aligned
    four bytes there (as a diverged weight would hold)."""
    kind, where, mask = how
    i = int(where * len(data))
    if kind == "truncate":
        return data[:i]
    if kind == "nan":
        i = min(i - i % 4, len(data) - 4)
        return data[:i] + NAN32 + data[i + 4:]
    return data[:i] + bytes([data[i] ^ mask]) + data[i + 1:]
