"""Measurements of a ticket, made once when it is written and reused downstream (the "measure once" rule).

Two size keys, two meanings, never mixed:
- `storage_bytes`: a storage model of the ticket: kept prunable weights at their bit width, a 1-bit mask per
  prunable weight when anything is pruned, every other tensor (biases, norms) at 32 bits;
- `file_bytes`: bytes on disk of the ticket's trained weights (`final.safetensors`, dense float storage).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from compress.io import load_tensors, save_tensors
from compress.ticket import Ticket

PREDICTIONS = "predictions.safetensors"


def storage_bytes(ticket: Ticket) -> int:
    """The storage model of `ticket` (see the module docstring)."""
    state = ticket.final if ticket.final is not None else ticket.init
    bits = 0
    for name, t in state.items():
        if not t.is_floating_point():
            continue
        if name in ticket.mask:
            m = ticket.mask[name]
            width = int(ticket.precision.get(name, ticket.precision.get(name.rsplit(".", 1)[0], 32)))
            bits += int(m.sum()) * width + (m.numel() if not bool(m.all()) else 0)
        else:
            bits += t.numel() * 32
    return math.ceil(bits / 8)


def file_bytes(ticket_dir: Path) -> int | None:
    """Bytes on disk of the ticket's trained weights (None for an untrained ticket)."""
    p = Path(ticket_dir) / "final.safetensors"
    return p.stat().st_size if p.is_file() else None


def save_predictions(directory: Path, top1: torch.Tensor) -> Path:
    return save_tensors(Path(directory) / PREDICTIONS, {"top1": top1.to(torch.int64)})


def agreement(reference: Path | None, top1: torch.Tensor) -> float | None:
    """Fraction of test samples whose top-1 class equals the reference predictions' (None without one)."""
    if reference is None or not Path(reference).is_file():
        return None
    ref = load_tensors(reference)["top1"]
    if ref.shape != top1.shape:
        return None
    return float((ref == top1.to(ref.dtype)).float().mean())


def ticket_metrics(ticket: Ticket, ticket_dir: Path, top1: torch.Tensor, reference: Path | None) -> dict[str, Any]:
    """The record of a written ticket: accuracy (as trained), density, both sizes, agreement with the baseline."""
    return {"test_acc": ticket.metrics.get("test_acc"), "density": ticket.density,
            "storage_bytes": storage_bytes(ticket), "file_bytes": file_bytes(ticket_dir),
            "agreement": agreement(reference, top1)}
