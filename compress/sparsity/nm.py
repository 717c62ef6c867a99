"""N:M structured sparsity: the pattern checker shared by N:M selection and the TensorRT export.

Layout (the one TensorRT's sparse tensor cores and NVIDIA ASP use): groups of M consecutive weights
along the input (reduction) dimension.
- Linear weight (out, in): each row is split into in/M groups.
- Conv weight (out, in, kh, kw): for each output channel and each kernel position (r, s), the input
  channels are split into groups of M; i.e. the weight is viewed as (out, kh, kw, in) ("KRSC").
A tensor is N:M-sparse when every group has at most N non-zeros. A layer whose input-channel count is
not a multiple of M has no pad-free grouping.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from compress.errors import UsageError

if TYPE_CHECKING:  # torch stays out of import time: settings validation parses patterns without it
    import torch


def parse(pattern: str) -> tuple[int, int]:
    """'2:4' -> (2, 4); raises `UsageError` unless 0 < N < M."""
    try:
        n_s, m_s = pattern.split(":")
        n, m = int(n_s), int(m_s)
    except ValueError as e:
        raise UsageError(f"N:M pattern must look like '2:4', got '{pattern}'.") from e
    if m < 1 or n < 1 or n >= m:
        raise UsageError(f"N:M pattern needs 1 <= N < M (e.g. 2:4, 1:4, 4:8); got N={n}, M={m}.")
    return n, m


def groupable(weight: torch.Tensor | tuple[int, ...], m: int) -> bool:
    """True when the input dimension splits into pad-free groups of M."""
    shape = tuple(weight) if isinstance(weight, tuple) else tuple(weight.shape)
    return len(shape) >= 2 and shape[1] % m == 0


def to_groups(weight: torch.Tensor, m: int) -> torch.Tensor:
    """View a weight as (groups, M) in the TensorRT layout (a copy for conv weights)."""
    if not groupable(weight, m):
        raise UsageError(f"a weight of shape {tuple(weight.shape)} has {weight.shape[1] if weight.ndim > 1 else 1} "
                         f"input channels, not a multiple of M={m}: no pad-free {m}-groups.")
    w = weight if weight.ndim == 2 else weight.movedim(1, -1)  # (out, in, *k) -> (out, *k, in)
    return w.reshape(-1, m)


def from_groups(groups: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of `to_groups` for a weight of `shape`."""
    if len(shape) == 2:
        return groups.reshape(shape)
    out, cin, *k = shape
    return groups.reshape(out, *k, cin).movedim(-1, 1).contiguous()


@dataclass
class NMReport:
    layer: str
    shape: tuple[int, ...]
    groupable: bool
    groups: int
    violating_groups: int

    @property
    def compliant(self) -> bool:
        return self.groupable and self.violating_groups == 0

    def to_dict(self) -> dict:
        return {**asdict(self), "shape": list(self.shape), "compliant": self.compliant}


def check(weight: torch.Tensor, n: int, m: int, layer: str = "") -> NMReport:
    """How many M-groups of `weight` hold more than N non-zeros (independent of how masks were made)."""
    shape = tuple(weight.shape)
    if not groupable(weight, m):
        return NMReport(layer, shape, False, 0, 0)
    g = to_groups(weight, m)
    return NMReport(layer, shape, True, g.shape[0], int(((g != 0).sum(dim=1) > n).sum()))
