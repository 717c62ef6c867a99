"""Rank 0 leads, the other ranks serve: how a training runs on every rank of a job (see compress.distributed).

`run_rank(main)` is a launched process's entry: rank 0 runs `main` (the command) and the others `serve()`.
When rank 0 reaches a training (`compress.train.train`, `train_stacked`, a data-driven scorer) it calls
`call(fn, args)`: a doorbell key in the job's store wakes the serving ranks, the job (function by name, its
arguments, rank 0's RNG state and thread count; a dataset only the first time) is broadcast, and every
rank runs `fn` in lock step. Rank 0 keeps its own objects (the model it passed is trained in place) and the
result; the serving ranks drop theirs. Serving ranks poll the doorbell and watch a heartbeat rank 0 bumps
every second, so a rank 0 that died or hangs outside a collective ends them too, with a message.
"""

from __future__ import annotations

import datetime
import logging
import os
import pickle
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from compress.distributed import ops, timeout_s
from compress.errors import DistributedError, LotteryError

log = logging.getLogger("lottery")
_S: dict[str, Any] = {"started": False, "job": 0, "store": None, "sent": {}, "cache": {}, "stop": None}
PREFIX = "lottery/"


def started() -> bool:
    return bool(_S["started"])


def should_dispatch() -> bool:
    """True on rank 0 of a started job outside a dispatched training: a training must be handed out."""
    return bool(_S["started"]) and not ops.in_spmd() and _rank() == 0


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank()


def _store() -> Any:
    import torch.distributed as dist

    return dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                         timeout=datetime.timedelta(seconds=timeout_s()))


def start() -> None:
    """Join the job's process group (gloo for CPU tensors, plus nccl for CUDA ones when CUDA is here)."""
    import torch.distributed as dist

    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s()))
        _S["store"] = _store()
    except (RuntimeError, ValueError, KeyError) as e:
        raise DistributedError(f"could not join the data-parallel job (rank {os.environ.get('RANK')} of "
                               f"{os.environ.get('WORLD_SIZE')}, rendezvous {os.environ.get('MASTER_ADDR')}:"
                               f"{os.environ.get('MASTER_PORT')}): {str(e).splitlines()[0][:200]}. Check that every "
                               "node was given the same --nnodes and --rdzv-endpoint and can reach it.") from e
    _S["started"] = True
    if _rank() == 0:
        _S["stop"] = threading.Event()
        threading.Thread(target=_heartbeat, args=(_S["stop"],), daemon=True, name="lottery-heartbeat").start()


def _heartbeat(stop: threading.Event) -> None:
    store = _store()
    while not stop.wait(1.0):
        try:
            store.add(PREFIX + "beat", 1)
        except (RuntimeError, OSError):
            return


def call(fn: Callable[..., Any], args: tuple = (), kwargs: dict[str, Any] | None = None,
         leader: dict[str, Any] | None = None) -> Any:
    """Run `fn(*args, **kwargs)` on every rank in lock step; rank 0 also gets `leader` kwargs (hooks that only
    it may call, e.g. progress) and returns its own result."""
    kwargs = dict(kwargs or {})
    job = {"fn": (fn.__module__, fn.__qualname__), "args": tuple(_pack(a) for a in args), "kwargs": kwargs,
           "rng": torch.get_rng_state(), "threads": torch.get_num_threads()}
    _post(job)
    with ops.spmd():
        return fn(*args, **kwargs, **(leader or {}))


def _post(job: dict[str, Any] | None) -> None:
    _S["job"] += 1
    with ops.guarded("handing a training to the other ranks"):
        _S["store"].set(f"{PREFIX}job/{_S['job']}", b"1")
        ops.broadcast_bytes(ops.dumps(job), "handing a training to the other ranks")


class _Data:
    """A dataset sent once per job: later calls send only its token."""

    def __init__(self, token: int, dataset: Any = None) -> None:
        self.token, self.dataset = token, dataset


def _pack(obj: Any) -> Any:
    from compress.data import Dataset

    if not isinstance(obj, Dataset):
        return obj
    token = id(obj)
    if token in _S["sent"]:
        return _Data(token)
    _S["sent"][token] = obj  # kept alive, so the id is never reused by another dataset
    return _Data(token, obj)


def _unpack(obj: Any) -> Any:
    if not isinstance(obj, _Data):
        return obj
    if obj.dataset is not None:
        _S["cache"][obj.token] = obj.dataset
    return _S["cache"][obj.token]


def serve() -> None:
    """A serving rank's life: run every job rank 0 hands out until it says stop."""
    while True:
        _S["job"] += 1
        _wait_doorbell(_S["job"])
        job = pickle.loads(ops.broadcast_bytes(None, "waiting for a training from rank 0"))
        if job is None:
            return
        module, qualname = job["fn"]
        fn: Any = sys.modules.get(module) or __import__(module, fromlist=["_"])
        for part in qualname.split("."):
            fn = getattr(fn, part)
        torch.set_rng_state(job["rng"])
        torch.set_num_threads(job["threads"])
        try:
            with ops.spmd():
                fn(*(_unpack(a) for a in job["args"]), **job["kwargs"])
        except DistributedError:
            raise
        except LotteryError:
            continue  # rank 0 computed the same and raised the same: it decides what happens next


def _wait_doorbell(k: int) -> None:
    store, key = _S["store"], f"{PREFIX}job/{k}"
    beat, since, pause = -1, time.monotonic(), 0.001
    while True:
        with ops.guarded("waiting for rank 0"):
            if store.check([key]):
                return
            now = store.add(PREFIX + "beat", 0)
        if now != beat:
            beat, since = now, time.monotonic()
        elif time.monotonic() - since > timeout_s():
            ops.broken()
            raise DistributedError(f"rank 0 stopped answering: no heartbeat for {timeout_s():.0f} s (its process hung "
                                   "or died). This rank stops too; rank 0's run directory keeps what finished, so "
                                   "running the same command again resumes.")
        time.sleep(pause)
        pause = min(0.05, pause * 2)


def stop() -> None:
    """Rank 0: tell the serving ranks to exit; every rank: leave the process group (unless it broke)."""
    import torch.distributed as dist

    if not _S["started"]:
        return
    if _rank() == 0 and not ops.is_broken():
        try:
            _post(None)
        except DistributedError:
            pass
    if _S["stop"] is not None:
        _S["stop"].set()
    if not ops.is_broken():
        # Leave in order: every serving rank leaves the group and says so, then rank 0 does. Rank 0's machine
        # may host the rendezvous store (several machines), so it must outlive the others' leaving; and a
        # peer that vanished without leaving makes gloo abort rank 0's own exit.
        rank, world = _rank(), dist.get_world_size()
        try:
            if rank > 0:
                dist.destroy_process_group()
                _S["store"].set(f"{PREFIX}left/{rank}", b"1")
            else:
                _S["store"].wait([f"{PREFIX}left/{r}" for r in range(1, world)],
                                 datetime.timedelta(seconds=min(60.0, timeout_s())))
                dist.destroy_process_group()
        except (RuntimeError, ValueError):  # a rank that did not say it left: leave as from a broken group
            ops.broken()
    _S["started"] = False


def run_rank(main: Callable[[], Any]) -> int:
    """Entry of a launched process: rank 0 runs `main` (its exit code is returned), the others serve."""
    from compress.distributed import env_rank

    code: Any = 0
    try:
        start()
        if env_rank() == 0:
            try:
                main()
            except SystemExit as e:
                code = e.code
        else:
            serve()
    except DistributedError as e:
        ops.broken()
        from compress.distributed import hand_to_launcher

        if not hand_to_launcher(str(e)):
            sys.stderr.write(f"error (rank {env_rank()}): {e}\n")
        code = e.exit_code
    except KeyboardInterrupt:
        code = 130
    except Exception as e:  # noqa: BLE001 - a serving rank's bug: one paragraph, then leave (rank 0 sees it gone)
        ops.broken()
        from compress.distributed import hand_to_launcher

        first = (str(e).splitlines() or [""])[0][:200]
        text = (f"rank {env_rank()} failed with an unexpected error ({type(e).__name__}: {first}) while running a "
                "training handed out by rank 0. This is a bug in lottery, not in your input; run the command in "
                "one process to see the traceback.")
        if not hand_to_launcher(text):
            sys.stderr.write(f"error: {text}\n")
        code = 3
    finally:
        try:
            stop()
        except Exception:  # noqa: BLE001 - leaving a broken group must not mask the exit code
            ops.broken()
    code = code if isinstance(code, int) else (0 if code is None else 1)
    # Leave without the interpreter's normal exit where a peer may already be gone: gloo's and the store's threads
    # then abort it (SIGABRT, "terminate called without an active exception"). That happens to a broken group, and
    # to a serving rank once rank 0 has finished: with several machines rank 0's launcher closes the rendezvous
    # store, and this rank's launcher reported its finished, successful run as killed (seen in the two-launcher
    # test). A serving rank has left the group (stop) and has nothing left to write.
    if ops.is_broken() or env_rank() > 0:
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    return code
