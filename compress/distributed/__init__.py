"""Data-parallel training on torch.distributed (gloo on CPU, nccl on CUDA): rank 0 leads, the others serve.

Launch: `lottery ... --nproc N` (relaunches the command through torch.distributed.run), or
`torchrun --nproc_per_node N -m pipelines.cli ...`; several machines add `--nnodes` and `--rdzv-endpoint`.

Design (why rank 0 alone touches files): rank 0 runs the command exactly as a single process does (settings,
run directory, resume, masks, reports). The other ranks never run the command: they wait for rank 0 to hand
them a training (`dispatch.call`: the function, its arguments, the dataset once, rank 0's RNG state and
thread count) and run that same function beside it, in lock step. So only rank 0 reads or writes the run
directory (no shared filesystem is needed across machines, no file races, resume is rank 0's ordinary
resume), and every mask, rewind point and checkpoint a rank trains from is rank 0's, sent with the job.

Inside a dispatched training every rank takes its share of the same shuffled global batch, the loss is
scaled so that summed gradients are the global batch's mean gradient, and one all-reduce per step sums the
gradients (and the loss): the update equals a one-process run with the same global batch within float
tolerance. Validation and test passes are split across ranks and their sums all-reduced. Gradients that
decide pruning or growth (RigL's dense gradient, SNIP and GraSP scores) are all-reduced the same way; a
mask changed during training is checked equal across ranks (rank 0's is kept if float ties differ).

Failures never hang: collectives run under the process group's timeout (`LOTTERY_DIST_TIMEOUT`, seconds,
default 300), a waiting rank watches rank 0's heartbeat, and a dead peer raises `DistributedError` (one
paragraph) on the ranks that remain. This module is torch-free; the machinery is in its submodules.
"""

from __future__ import annotations

import os

TIMEOUT_ENV = "LOTTERY_DIST_TIMEOUT"
LAUNCHER_ENV = "LOTTERY_LAUNCHER"  # set by `lottery --nproc`: the launcher explains a failed job in one paragraph


def launched() -> bool:
    """True in a process started by torchrun (or `--nproc`) as one of several ranks."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def env_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def timeout_s() -> float:
    """Seconds a collective (or a waiting rank) waits for the others before giving up."""
    try:
        value = float(os.environ.get(TIMEOUT_ENV, "300"))
    except ValueError:
        value = 300.0
    return value if value > 0 else 300.0


def hand_to_launcher(message: str) -> bool:
    """Under `lottery --nproc`, leave a lost-rank failure to the launcher, which names the rank that failed
    first in one paragraph: `message` goes to the error file torchrun gives each rank (outside the run
    directory). False when this process should print it itself (plain torchrun)."""
    import json
    import time

    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not os.environ.get(LAUNCHER_ENV) or not path:
        return False
    try:
        with open(path, "w") as f:
            json.dump({"message": message, "timestamp": int(time.time()), "lottery": True}, f)
    except OSError:
        return False
    return True


__all__ = ["LAUNCHER_ENV", "TIMEOUT_ENV", "env_rank", "hand_to_launcher", "launched", "timeout_s"]
