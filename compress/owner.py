"""Who owns a lock or a scratch folder, and whether that process still lives.

A record is `{pid, host, proc_start, started}`: `proc_start` is the kernel's start time of the process
(clock ticks since boot, from /proc), so a recycled pid is not mistaken for the owner. Liveness can only
be known on the owner's own host.
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
import time
from typing import Any


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in ticks) of `pid` from /proc, or None when there is no such process (or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    rest = text[text.rfind(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return rest[0], int(rest[19])


def this_process() -> dict[str, Any]:
    """The record of the calling process."""
    stat = _stat(os.getpid())
    return {"pid": os.getpid(), "host": socket.gethostname(), "proc_start": stat[1] if stat else None,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": shlex.join(sys.argv)}


def alive(record: dict[str, Any]) -> bool | None:
    """Whether the recorded process still runs: None when it ran on another host (cannot be known here)."""
    if record.get("host") != socket.gethostname():
        return None
    try:
        pid = int(record["pid"])
    except (KeyError, TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    stat = _stat(pid)
    if stat is None:  # no /proc (not Linux): signal 0 only tells that some process has the pid
        if not os.path.isdir("/proc"):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        return False
    state, start = stat
    if state in ("Z", "X"):  # a zombie has finished; only its exit status is left to collect
        return False
    return record.get("proc_start") in (None, start)


def describe(record: dict[str, Any]) -> str:
    """`pid 123 on host h since 2026-12-01T10:00:00+0000 (lottery run ...)` for messages."""
    cmd = record.get("command")
    return (f"pid {record.get('pid', '?')} on host {record.get('host', '?')} since {record.get('started', '?')}"
            + (f" ({cmd})" if cmd else ""))
