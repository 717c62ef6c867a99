"""Child processes die with their parent (kill -9, Ctrl-C, timeout) and their bytes never reach us raw."""

import json
import os
import signal
import sys
import textwrap
import time

import pytest

from compress import scratch
from export import child
from tests.export.procs import children, gone, python, wait_for

# A child that starts a grandchild (`sleep`) in its own group, records both pids, then sleeps.
FAMILY = textwrap.dedent("""
    import json, os, subprocess, sys, time
    grand = subprocess.Popen(["sleep", "600"])
    with open(sys.argv[1], "w") as f:
        json.dump({"child": os.getpid(), "grandchild": grand.pid}, f)
    time.sleep(600)
""")


def _family(path):
    found = wait_for(lambda: path.is_file() and path.read_text().endswith("}") and json.loads(path.read_text()))
    assert found, "the child never started"
    return found


def _cleanup(path):
    """Kill whatever of a family is still alive (by pid), so a failing test leaves no process behind."""
    if path.is_file() and path.read_text().endswith("}"):
        for pid in json.loads(path.read_text()).values():
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_random_bytes_are_decoded_never_raised_or_echoed_raw():
    code = ("import os, sys; sys.stdout.buffer.write(os.urandom(4096)); "
            "sys.stderr.buffer.write(b'ok\\xff\\xfe\\x1b[31m\\x00 boom\\n'); sys.exit(3)")
    proc = child.run([sys.executable, "-c", code])
    assert proc.returncode == 3 and isinstance(proc.stdout, str) and "\ufffd" in proc.stdout
    line = child.last_line(proc.stderr)
    assert line == "ok\ufffd\ufffd?[31m? boom" and "\x1b" not in child.tail(proc.stdout + proc.stderr)
    assert child.exit_text(proc.returncode) == "exit 3" and child.exit_text(-11) == "killed by SIGSEGV"
    assert child.crashed(-11) and child.crashed(139) and not child.crashed(1)


def test_timeout_kills_the_whole_group(tmp_path):
    pids = tmp_path / "pids.json"
    try:
        with pytest.raises(child.ChildTimeoutError, match="did not finish within 3 s"):
            child.run([sys.executable, "-c", FAMILY, str(pids)], timeout=3)
        family = json.loads(pids.read_text())
        assert wait_for(lambda: gone(family["child"]) and gone(family["grandchild"]), timeout=10)
    finally:
        _cleanup(pids)


def test_ctrl_c_stops_the_child_and_its_children(tmp_path):
    pids = tmp_path / "pids.json"
    parent = python("import sys\nfrom export import child\n"
                    f"child.run([sys.executable, '-c', {FAMILY!r}, {str(pids)!r}])")
    try:
        family = _family(pids)
        os.kill(parent.pid, signal.SIGINT)  # what Ctrl-C sends (the child, in its own group, gets nothing)
        _, err = parent.communicate(timeout=60)
        assert "KeyboardInterrupt" in err
        assert wait_for(lambda: gone(family["child"]) and gone(family["grandchild"]), timeout=10)
    finally:
        _cleanup(pids)


def test_kill_9_of_the_parent_takes_the_child_down(tmp_path):
    pids = tmp_path / "pids.json"
    parent = python("import sys\nfrom export import child\n"
                    f"child.run([sys.executable, '-c', {FAMILY!r}, {str(pids)!r}])")
    try:
        family = _family(pids)
        parent.kill()
        parent.wait(timeout=60)
        assert wait_for(lambda: gone(family["child"]), timeout=10), "the child outlived its parent"
    finally:
        _cleanup(pids)  # PDEATHSIG reaches direct children only: the `sleep` grandchild is ours to stop


@pytest.mark.skipif(__import__("importlib").util.find_spec("larq_compute_engine") is None,
                    reason="larq-compute-engine (edge extra) not installed")
def test_kill_9_during_lce_export_leaves_no_worker_and_resume_removes_the_job_folder(tmp_path):
    run = tmp_path / "run"
    code = textwrap.dedent(f"""
        import json
        from compress import scratch
        from export.lce import run_worker
        job = scratch.make({str(run)!r}, ".lce-job-")
        (job / "graph.json").write_text(json.dumps({{"input_shape": [4], "layers": [{{"op": "output"}}]}}))
        run_worker([job])
    """)
    parent = python(code)
    worker = wait_for(lambda: [p for p, cmd in children(parent.pid) if "export.lce_worker" in cmd])
    assert worker, f"no worker started: {parent.stderr.read() if parent.poll() is not None else ''}"
    time.sleep(0.5)  # well inside TensorFlow's import: the worker is busy
    parent.kill()
    parent.wait(timeout=60)
    alive = not wait_for(lambda: gone(worker[0]), timeout=10)
    if alive:
        os.kill(worker[0], signal.SIGKILL)
    assert not alive, "the LCE worker outlived lottery"
    jobs = list(run.glob(".lce-job-*"))
    assert len(jobs) == 1 and (jobs[0] / scratch.OWNER_FILE).is_file()  # kill -9 left it, in the run dir
    assert scratch.remove_stale(run) == jobs and not jobs[0].exists()


def test_remove_stale_keeps_folders_of_living_owners(tmp_path):
    mine = scratch.make(tmp_path, "lottery-edge-")
    nested = tmp_path / "stage" / "lce"
    dead = python(f"from compress import scratch\nprint(scratch.make({str(nested)!r}, '.lce-job-'))")
    out, err = dead.communicate(timeout=60)
    orphan = tmp_path / "stage" / "lce" / out.strip().rsplit("/", 1)[-1]
    assert orphan.is_dir(), err
    remote = scratch.make(tmp_path, ".lce-job-")
    (remote / scratch.OWNER_FILE).write_text(json.dumps({"pid": 1, "host": "another-host"}))
    fresh, old = tmp_path / "lottery-edge-fresh", tmp_path / "lottery-edge-old"
    fresh.mkdir()
    old.mkdir()
    os.utime(old, (time.time() - 2 * scratch.GRACE_S,) * 2)
    assert sorted(scratch.remove_stale(tmp_path)) == sorted([orphan, old])
    assert mine.is_dir() and remote.is_dir() and fresh.is_dir()
    with scratch.folder(tmp_path, ".lce-job-") as d:
        assert d.parent == tmp_path and d.name.startswith(".lce-job-")
    assert not d.exists()
    with pytest.raises(ValueError, match="remove_stale would never find it"):
        scratch.make(tmp_path, "tmp-")
