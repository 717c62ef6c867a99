"""Child processes that die with their parent and never echo raw bytes.

Every helper process lottery starts (the TensorFlow/LCE worker, the edge runner, ssh and scp) goes
through `run`: the child gets its own process group (so Ctrl-C at the terminal reaches only lottery,
which then stops the whole group) and, on Linux, a parent-death signal (`prctl(PR_SET_PDEATHSIG,
SIGKILL)`), so a `kill -9` of lottery takes the child down too instead of leaving it to finish and
write into the run dir later. On a timeout or any exception (KeyboardInterrupt included) the group is
killed before the error propagates. Output is decoded as UTF-8 with replacement; `printable` also
masks control characters, so a child's garbage never reaches the terminal as raw bytes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence

from compress.errors import LotteryError

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL, signal.SIGFPE)


class ChildTimeoutError(LotteryError):
    """A child process that did not finish in time (it was stopped, with its own children)."""


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()  # resolved in the parent: the child only calls it between fork and exec


def _die_with(parent: int) -> Callable[[], None]:
    def preexec() -> None:
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # the parent died before the signal was armed
                os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run(cmd: Sequence[str | os.PathLike], *, timeout: float | None = None, env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike | None = None, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run `cmd` to completion in its own process group, tied to this process; output decoded with replacement.

    Raises `ChildTimeoutError` after `timeout` seconds (the group is killed first); any exception while
    waiting (KeyboardInterrupt included) kills the group and propagates."""
    args = [os.fspath(c) for c in cmd]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
                            start_new_session=True, preexec_fn=_die_with(os.getpid()))
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        raise ChildTimeoutError(f"`{_name(args)}` did not finish within {timeout:g} s and was stopped (with any "
                                "process it started). Raise the timeout, or check what it waits for.") from None
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    _kill_group(proc)  # anything the child left running in its group goes with it
    return subprocess.CompletedProcess(args, proc.returncode, decode(out), decode(err))


def decode(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


def printable(text: str) -> str:
    """`text` with control characters (escape sequences, NULs, ...) replaced, newlines and tabs kept."""
    return "".join(c if c.isprintable() or c in "\n\t" else "?" for c in text.replace("\r\n", "\n"))


def last_line(text: str) -> str:
    """The last non-empty line of a child's output, printable and at most 300 characters."""
    lines = [ln.strip() for ln in printable(text).splitlines() if ln.strip()]
    return (lines[-1][:300] if lines else "")


def tail(text: str, lines: int = 6) -> str:
    """The last `lines` non-empty lines of a child's output, printable."""
    kept = [ln.rstrip()[:300] for ln in printable(text).splitlines() if ln.strip()]
    return "\n".join(kept[-lines:])


def exit_text(returncode: int) -> str:
    """`exit 1`, or `killed by SIGSEGV` for a child a signal ended."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit {returncode}"


def crashed(returncode: int) -> bool:
    """Whether a child ended on a crash signal (directly, or as a shell's 128 + signal)."""
    sig = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    return sig in [int(s) for s in CRASH_SIGNALS]


def _name(args: list[str]) -> str:
    shown = " ".join(args[:3])
    return shown + (" ..." if len(args) > 3 else "")
