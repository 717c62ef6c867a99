"""Process helpers for the crash tests: children of a pid, liveness, waiting (Linux /proc)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def state(pid: int) -> str | None:
    """The /proc state letter of `pid` (R, S, Z, ...), or None when no such process exists."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()[0]


def gone(pid: int) -> bool:
    """Exited (a zombie only waits for its exit status to be collected)."""
    return state(pid) in (None, "Z", "X")


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every direct child of `pid`."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            text = (d / "stat").read_text()
            ppid = int(text[text.rfind(")") + 2 :].split()[1])
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append((int(d.name), cmd))
    return out


def wait_for(predicate, timeout: float = 120.0, every: float = 0.05):
    """Poll `predicate` until it returns something truthy (returned) or `timeout` seconds pass (None)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return None


def python(code: str, *args: str) -> subprocess.Popen:
    """A Python process running `code` with this checkout first on its path."""
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
