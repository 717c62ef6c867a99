"""An exclusive lock per run directory: two runs never write into the same folder at once.

The lock is `LOCK_FILE` inside the run dir, held with `flock` for as long as the holder lives (the kernel
drops it when the process dies, even on `kill -9`) and holding the holder's record (pid, host, start
time, command) so a refused run can name it. A second holder fails at once with `RunLockedError`. A lock
file left by a process that is gone (same host) is taken over, with a notice (`RunLock.notice`, also
logged). A lock file written on another host whose flock is free here is refused: whether its holder
lives cannot be known from here (delete the file once that run is over). Released on exit.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
from pathlib import Path
from typing import Any

from compress import owner
from compress.errors import LotteryError

LOCK_FILE = ".lottery.lock"
log = logging.getLogger("lottery")


class RunLockedError(LotteryError):
    """The run directory is in use by another lottery process."""


class RunLock:
    """`with RunLock(run_dir):` ... holds the run dir exclusively; see the module docstring."""

    def __init__(self, directory: str | Path, name: str = LOCK_FILE) -> None:
        self.directory = Path(directory)
        self.path = self.directory / name
        self.fd: int | None = None
        self.notice: str | None = None
        self.record: dict[str, Any] = {}

    def acquire(self) -> RunLock:
        """Take the lock or raise `RunLockedError` naming its holder; never waits."""
        if self.fd is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                raise RunLockedError(self._busy(holder)) from None
            # The holder before us may have unlinked the file between our open and our flock: then we hold
            # a lock on a file nobody else can find, so start over on the current one.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read(fd)
        if previous:
            state = owner.alive(previous)
            if state is not False:  # alive without its flock (lock file replaced) or on another host: refuse
                os.close(fd)
                raise RunLockedError(self._busy(previous, other_host=state is None))
            self.notice = (f"took over the lock of {self.directory}: it was left by {owner.describe(previous)}, "
                           "which is gone (killed or crashed).")
            log.warning("%s", self.notice)
        self.record = owner.this_process()
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(self.record) + "\n").encode(), 0)
        os.fsync(fd)
        self.fd = fd
        atexit.register(self.release)
        return self

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self.fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding the flock: nobody can take the old file meanwhile
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None
        atexit.unregister(self.release)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _busy(self, holder: dict[str, Any], other_host: bool = False) -> str:
        who = owner.describe(holder) if holder else "another process (its record is not written yet)"
        if other_host:
            return (f"the run directory {self.directory} is locked by {who}, another machine: its run may still be "
                    f"going. Wait for it, or pick another --out; if that run is over, delete {self.path}.")
        return (f"the run directory {self.directory} is in use by {who}. Wait for that run to finish (or stop it), "
                "or pick another --out.")


def holder(directory: str | Path, name: str = LOCK_FILE) -> dict[str, Any] | None:
    """The record in a run dir's lock file with `alive` (True, False, or None: another host), or None."""
    path = Path(directory) / name
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    return {**record, "alive": owner.alive(record)}


def _read(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 1 << 16, 0).decode("utf-8", "replace") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
