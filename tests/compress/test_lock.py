"""The per-run-dir lock, exercised with real processes: one holder, clear refusals, takeover after kill -9."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compress.lock import LOCK_FILE, RunLock, RunLockedError, holder

ROOT = Path(__file__).resolve().parents[2]
HOLD = textwrap.dedent("""
    import sys
    from compress.lock import RunLock
    lock = RunLock(sys.argv[1]).acquire()
    print("locked", lock.notice or "", flush=True)
    sys.stdin.read()  # hold until the test closes stdin (or kills us)
""")


def _python(code: str, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture
def held(tmp_path):
    """A separate process that holds the lock of tmp_path/run."""
    proc = _python(HOLD, str(tmp_path / "run"))
    assert proc.stdout.readline().startswith("locked"), proc.stderr.read()
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_second_holder_fails_at_once_naming_the_holder(tmp_path, held):
    run = tmp_path / "run"
    with pytest.raises(RunLockedError) as err:
        RunLock(run).acquire()
    msg = str(err.value)
    assert f"pid {held.pid} on host {socket.gethostname()}" in msg and "in use" in msg and "--out" in msg
    other = _python("import sys\nfrom compress.lock import RunLock\nRunLock(sys.argv[1]).acquire()", str(run))
    _, stderr = other.communicate(timeout=60)  # LOCK_NB: it never waits for the holder (which never exits)
    assert other.returncode == 1 and f"RunLockedError: the run directory {run} is in use by pid {held.pid}" in stderr
    assert holder(run)["pid"] == held.pid and holder(run)["alive"] is True


def test_lock_is_released_when_the_holder_exits(tmp_path, held):
    held.stdin.close()  # the holder returns normally without calling release(): atexit does it
    assert held.wait(timeout=60) == 0
    assert not (tmp_path / "run" / LOCK_FILE).exists()
    with RunLock(tmp_path / "run") as lock:
        assert lock.notice is None and json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert not lock.path.exists()


def test_lock_of_a_killed_holder_is_taken_over_with_a_notice(tmp_path, held):
    os.kill(held.pid, signal.SIGKILL)
    held.wait(timeout=60)
    run = tmp_path / "run"
    assert json.loads((run / LOCK_FILE).read_text())["pid"] == held.pid  # kill -9 left the file behind
    assert holder(run)["alive"] is False
    second = _python(HOLD, str(run))  # a real second run takes it over and says so
    line = second.stdout.readline()
    assert line.startswith("locked took over the lock") and f"pid {held.pid}" in line and "gone" in line
    second.stdin.close()
    assert second.wait(timeout=60) == 0 and not (run / LOCK_FILE).exists()


def test_recycled_pid_does_not_keep_a_lock(tmp_path):
    """A record naming a living pid whose process started at another time belongs to a process that is gone."""
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "proc_start": 1}))
    with RunLock(run) as lock:
        assert "which is gone" in lock.notice


def test_lock_from_another_host_is_refused_with_a_way_out(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text(json.dumps({"pid": 4242, "host": "build-07", "started": "2026-12-01T10:00:00"}))
    with pytest.raises(RunLockedError, match=r"pid 4242 on host build-07 .* another machine.*delete .*\.lottery\.lock"):
        RunLock(run).acquire()
    assert (run / LOCK_FILE).exists()


def test_same_process_cannot_hold_it_twice(tmp_path):
    with RunLock(tmp_path) as first, pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
        RunLock(tmp_path).acquire()
    assert first.fd is None and not first.path.exists()
