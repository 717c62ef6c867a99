"""Collectives used inside a dispatched (data-parallel) training; each is a no-op in a single process.

`world()` is the number of ranks taking part in the running training: 1 outside one (rank 0 also runs plain
single-process code between trainings, e.g. scoring a ticket for its report). Every failure of a collective
(a dead or hung peer) becomes `DistributedError`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import pickle
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import torch

from compress.errors import DistributedError

T = TypeVar("T")
log = logging.getLogger("lottery")
_SPMD = {"on": False, "broken": False}


def world() -> int:
    """Ranks sharing the running training (1 outside a dispatched training)."""
    if not _SPMD["on"]:
        return 1
    import torch.distributed as dist

    return dist.get_world_size()


def rank() -> int:
    if not _SPMD["on"]:
        return 0
    import torch.distributed as dist

    return dist.get_rank()


@contextlib.contextmanager
def spmd() -> Iterator[None]:
    """Mark the enclosed code as run by every rank in lock step (a dispatched training)."""
    before = _SPMD["on"]
    _SPMD["on"] = True
    try:
        yield
    finally:
        _SPMD["on"] = before


def in_spmd() -> bool:
    return _SPMD["on"]


def broken() -> None:
    """Record that a peer was lost: the process group must not be used (or torn down) any more."""
    _SPMD["broken"] = True


def is_broken() -> bool:
    return _SPMD["broken"]


@contextlib.contextmanager
def guarded(what: str) -> Iterator[None]:
    """Turn a failed collective into one paragraph naming what was going on."""
    try:
        yield
    except DistributedError:
        raise
    except (RuntimeError, ValueError) as e:
        import torch.distributed as dist

        if not isinstance(e, dist.DistError) and not _looks_distributed(str(e)):
            raise
        broken()
        raise DistributedError(failure_message(what, e)) from e


def _looks_distributed(text: str) -> bool:
    words = ("gloo", "nccl", "Connection", "connection", "timed out", "Timed out", "peer", "socket", "Socket",
             "store", "Store")
    return any(w in text for w in words)


def failure_message(what: str, e: BaseException) -> str:
    text = str(e)
    known = ("Connection reset by peer", "Connection closed by peer", "Connection refused", "Broken pipe",
             "timed out", "Timed out", "timeout")
    reason = next((k for k in known if k in text), (text.splitlines() or [type(e).__name__])[0][:160])
    return (f"the data-parallel job failed while {what}: another rank stopped answering (its process died, was "
            f"killed, or the network between ranks failed: {reason}). Nothing half-written was kept: finished "
            "levels, stages and checkpoints stay in the run directory, so running the same command again "
            "resumes from there.")


def share(idx: torch.Tensor) -> torch.Tensor:
    """This rank's part of a global batch's sample indices (contiguous, sizes differing by at most one)."""
    n = world()
    return idx if n == 1 else torch.tensor_split(idx, n)[rank()]


def all_reduce_sum_(tensors: Sequence[torch.Tensor], what: str = "averaging gradients") -> None:
    """Sum `tensors` over the ranks in place, flattened into one buffer (one message per call)."""
    if world() == 1 or not tensors:
        return
    import torch.distributed as dist

    flat = torch.cat([t.reshape(-1) for t in tensors])
    with guarded(what):
        dist.all_reduce(flat)
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def all_reduce_grads(params: Sequence[torch.Tensor], extra: Sequence[torch.Tensor] = ()) -> None:
    """Sum the gradients of `params` (and the tensors in `extra`, e.g. the loss) over the ranks."""
    grads = [p.grad for p in params if p.grad is not None]
    all_reduce_sum_([*grads, *extra])


class _Pickler(pickle.Pickler):
    """Pickles module objects by name (a callback may hold its rule's module, e.g. RigL's)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.ModuleType):
            import importlib

            return importlib.import_module, (obj.__name__,)
        return NotImplemented


def dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def broadcast_bytes(data: bytes | None, what: str) -> bytes:
    """Rank 0's `data` on every rank (others pass None)."""
    import torch.distributed as dist

    with guarded(what):
        size = torch.tensor([len(data) if data is not None else 0], dtype=torch.int64)
        dist.broadcast(size, 0)
        buf = torch.frombuffer(bytearray(data), dtype=torch.uint8) if data is not None else torch.empty(
            int(size), dtype=torch.uint8)
        if int(size):
            dist.broadcast(buf, 0)
    return buf.numpy().tobytes()


def from_leader(compute: Callable[[], T], what: str = "sharing rank 0's state") -> T:
    """`compute()` evaluated on rank 0 and sent to every rank (e.g. the checkpoint a training resumes from)."""
    if world() == 1:
        return compute()
    data = dumps(compute()) if rank() == 0 else None
    return pickle.loads(broadcast_bytes(data, what))


def agree(name: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rank 0's `tensors` on every rank, after checking they were equal (they are computed identically from
    identical weights and all-reduced gradients; a float tie broken differently on another machine is
    logged and rank 0's value kept)."""
    if world() == 1:
        return tensors
    import torch.distributed as dist

    keys = sorted(tensors)
    flat = torch.cat([tensors[k].reshape(-1).to(torch.float64) for k in keys])
    mine = flat.clone()
    with guarded(f"checking the {name} is the same on every rank"):
        dist.broadcast(flat, 0)
    differ = int((flat != mine).sum())
    if differ:
        log.warning("rank %d: %d entries of the %s differed from rank 0's (float ties); using rank 0's", rank(),
                    differ, name)
    out, offset = {}, 0
    for k in keys:
        t = tensors[k]
        out[k] = flat[offset:offset + t.numel()].view(t.shape).to(t.dtype)
        offset += t.numel()
    return out
