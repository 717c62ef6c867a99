"""`--nproc N` (and `--nnodes`, `--rdzv-endpoint`): relaunch the same command data-parallel through
torch.distributed.run, and turn a failed job into one paragraph.

One machine: `lottery find imp ... --nproc 2` starts 2 processes (rank 0 runs the command and alone writes the
run directory; see compress.distributed). Several machines: run the same command on each with
`--nnodes K --nproc N --rdzv-endpoint HOST:PORT` (HOST: the first machine, reachable by all; the same PORT
everywhere). `torchrun --nproc_per_node N -m pipelines.cli <command> ...` is the same job started by hand.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

from compress.distributed import LAUNCHER_ENV
from compress.errors import UsageError
from pipelines.cli.common import err_console

FLAGS = ("--nproc", "--nnodes", "--rdzv-endpoint")
OWN_EXIT_CODES = (1, 2, 3, 130)  # rank 0 printed its own message before exiting with one of these


def requested(nproc: int | None, nnodes: int | None, endpoint: str | None) -> bool:
    """Whether the flags ask for a data-parallel job (checked, with a clear error for bad values)."""
    from compress import distributed

    if nproc is None and nnodes is None and not endpoint:
        return False
    if distributed.launched():
        raise UsageError(f"--nproc/--nnodes/--rdzv-endpoint start a data-parallel job, and this process already is "
                         f"rank {distributed.env_rank()} of one (started by torchrun); drop those flags.")
    for name, value in (("--nproc", nproc), ("--nnodes", nnodes)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be at least 1, got {value}.")
    if (nnodes or 1) > 1 and not endpoint:
        raise UsageError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT: the address of the first machine, the same "
                         "on every machine.")
    if endpoint and ":" not in endpoint:
        raise UsageError(f"--rdzv-endpoint must look like HOST:PORT (e.g. 10.0.0.1:29400), got '{endpoint}'.")
    return (nproc or 1) * (nnodes or 1) > 1


def strip(argv: list[str]) -> list[str]:
    """`argv` without the launch flags (the relaunched ranks run the command itself)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in FLAGS:
            skip = True
        elif not arg.startswith(tuple(f + "=" for f in FLAGS)):
            out.append(arg)
    return out


def relaunch(nproc: int | None, nnodes: int | None, endpoint: str | None) -> int:
    """Run this command (sys.argv without the launch flags) as a data-parallel job; its exit code."""
    import torch.distributed.run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    nproc, nnodes = nproc or 1, nnodes or 1
    # torchrun's own default for several ranks per machine, set here so it does not print its banner.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    os.environ[LAUNCHER_ENV] = "1"
    args = [f"--nproc-per-node={nproc}", f"--nnodes={nnodes}", "--max-restarts=0", "--monitor-interval=0.2"]
    args += (["--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}", "--rdzv-id=lottery"] if endpoint
             else ["--standalone"])
    args += ["-m", "pipelines.cli", *strip(sys.argv[1:])]
    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)
    err_console.print(f"data-parallel job: {nproc} process(es) on each of {nnodes} machine(s) "
                      f"({'rendezvous ' + endpoint if endpoint else 'this machine'})", highlight=False)
    try:
        torchrun.run(torchrun.parse_args(args))
    except ChildFailedError as e:
        return _explain(e.failures)
    except Exception as e:  # noqa: BLE001 - the launcher's own failures (rendezvous, a lost machine): one paragraph
        first = (str(e).splitlines() or [type(e).__name__])[0][:300]
        err_console.print(f"[bold red]error:[/] the data-parallel job could not run ({type(e).__name__}: {first}). "
                          "Check that every machine got the same --nnodes and --rdzv-endpoint and can reach it; "
                          "finished steps are saved, so running the same command again resumes.", highlight=False,
                          soft_wrap=True)
        return 3
    return 0


def _explain(failures: dict[int, Any]) -> int:
    """One paragraph naming the rank that failed first. A rank killed by a signal (other than the SIGTERM the
    launcher stops the others with) is the cause; else the first rank that exited with an error, with the
    explanation it left in its error file (compress.distributed.hand_to_launcher)."""
    first = min(f.timestamp for f in failures.values())
    # A rank killed by a signal (not the launcher's SIGTERM) within a moment of the first failure is its cause:
    # the others only noticed the lost connection (timestamps are whole seconds). A rank killed much later
    # was stopped by the launcher after the first failure (e.g. a hung rank, SIGKILLed after the grace time).
    killed = [(f.timestamp, r, f) for r, f in failures.items()
              if f.exitcode < 0 and f.exitcode != -signal.SIGTERM and f.timestamp <= first + 2]
    if killed:
        _, rank, f = min(killed, key=lambda t: t[:2])
        others = sorted(r for r in failures if r != rank)
        then = f" (then rank(s) {', '.join(map(str, others))} stopped)" if others else ""
        err_console.print(f"[bold red]error:[/] rank {rank} of the data-parallel job (pid {f.pid}) was killed by "
                          f"signal {f.signal_name()}{then}, so the job was stopped. Finished levels, stages and "
                          "checkpoints are saved in the run directory: run the same command again to resume.",
                          highlight=False, soft_wrap=True)
        return 3
    rank, f = min(failures.items(), key=lambda item: (item[1].timestamp, item[0]))
    if isinstance(f.error_file_data, dict) and f.error_file_data.get("lottery"):
        err_console.print(f"[bold red]error:[/] rank {rank}: {f.message}", highlight=False, soft_wrap=True)
        return int(f.exitcode) if f.exitcode > 0 else 3
    if rank == 0 and f.exitcode in OWN_EXIT_CODES:
        return int(f.exitcode)  # rank 0 said why itself (bad input, a failed gate, ...)
    err_console.print(f"[bold red]error:[/] rank {rank} of the data-parallel job (pid {f.pid}) exited with code "
                      f"{f.exitcode}, so the job was stopped. Finished levels, stages and checkpoints are saved in the "
                      "run directory: run the same command again to resume.", highlight=False, soft_wrap=True)
    return 3
