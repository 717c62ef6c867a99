"""The edge target on bad files and crashes: one-paragraph errors, no orphan runner, no scratch in /tmp."""

import os
import signal
import socket
import textwrap
import time

import numpy as np
import pytest

from compress import scratch
from compress.errors import UsageError
from deploy_targets.arm_lce import LceTarget
from deploy_targets.ssh import DeployError, Ssh
from deploy_targets.tflite_check import check_tflite
from export.errors import ArtifactError
from tests.export.procs import children, gone, python, wait_for

needs_lce = pytest.mark.skipif(__import__("importlib").util.find_spec("larq_compute_engine") is None,
                               reason="larq-compute-engine (edge extra) not installed")


def _garbage(tmp_path, kind: str, good: bytes | None = None):
    rng = np.random.default_rng(0)
    good = good or b""
    data = {"random": rng.bytes(4000), "tfl3": b"xxxxTFL3" + rng.bytes(4000), "empty": b"",
            "text": "not a flatbuffer é\x1b[31m".encode() * 8, "truncated": good[: len(good) // 3]}[kind]
    path = tmp_path / f"{kind}.tflite"
    path.write_bytes(data)
    return path


@needs_lce
@pytest.mark.parametrize("kind, fragment", [
    ("random", "is not a TensorFlow Lite model"), ("empty", "(0 bytes)"), ("text", "is not a TensorFlow Lite model"),
    ("tfl3", "is a corrupt TensorFlow Lite model"), ("truncated", "is a corrupt TensorFlow Lite model"),
])
def test_bad_tflite_is_refused_before_any_runner_starts(tmp_path, tflite, kind, fragment):
    path = _garbage(tmp_path, kind, tflite.read_bytes())
    with pytest.raises(ArtifactError) as err:
        LceTarget(iters=1, warmup=0).run(path)
    msg = str(err.value)
    assert fragment in msg and str(path) in msg and "\n" not in msg and "\x1b" not in msg
    assert not list(tmp_path.glob("lottery-edge-*"))
    check_tflite(tflite)  # the real model passes the same check


@needs_lce
@pytest.mark.parametrize("kind, fragment", [
    ("random", "cannot load random.tflite: RuntimeError: ERROR at"),
    ("tfl3", "crashed on this machine (killed by SIGSEGV)"),
])
def test_runner_failures_become_one_line(tmp_path, kind, fragment):
    """Past the file check (called directly here), the runner's own failure is mapped, never echoed."""
    path = _garbage(tmp_path, kind)
    with pytest.raises(ArtifactError) as err:
        LceTarget(iters=1, warmup=0)._local(path, None, tmp_path, ["--iters", "1", "--warmup", "0"])
    msg = str(err.value)
    assert fragment in msg and "Traceback" not in msg and "\n" not in msg


@needs_lce
def test_a_good_model_runs_and_leaves_no_scratch(tmp_path, tflite):
    x = np.random.default_rng(0).standard_normal((5, 8, 8, 1)).astype(np.float32)
    out = LceTarget(iters=2, warmup=0, work_dir=tmp_path / "run").run(tflite, x, np.arange(5))
    assert out["samples"] == 5 and out["logits"].shape == (5, 10) and np.isfinite(out["logits"]).all()
    assert list((tmp_path / "run").iterdir()) == []
    assert not list(tflite.parent.glob("lottery-edge-*"))


@needs_lce
def test_kill_9_during_an_edge_run_leaves_no_runner_and_scratch_only_in_the_run_dir(tmp_path, tflite):
    run = tmp_path / "run"
    code = textwrap.dedent(f"""
        import numpy as np
        from deploy_targets.arm_lce import LceTarget
        x = np.zeros((3, 8, 8, 1), np.float32)
        LceTarget(iters=10**8, warmup=0, work_dir={str(run)!r}).run({str(tflite)!r}, x, np.arange(3))
    """)
    parent = python(code)
    runner = wait_for(lambda: [(p, cmd) for p, cmd in children(parent.pid) if "edge_runner.py" in cmd])
    assert runner, f"no runner started: {parent.stderr.read() if parent.poll() is not None else ''}"
    pid, cmd = runner[0]
    assert f"--data {run}/lottery-edge-" in cmd  # the test set is written inside the run dir, not /tmp
    time.sleep(0.5)
    parent.kill()
    parent.wait(timeout=60)
    survived = not wait_for(lambda: gone(pid), timeout=10)
    if survived:
        os.kill(pid, signal.SIGKILL)
    assert not survived, "the edge runner outlived lottery"
    left = list(run.glob("lottery-edge-*"))
    assert len(left) == 1 and (left[0] / "data.npz").is_file()
    assert scratch.remove_stale(run) == left and list(run.iterdir()) == []


# --- SSH destinations -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["-oProxyCommand=touch /tmp/pwned", "-p22", "", "user@host name", "a\nb"])
def test_hosts_ssh_could_read_as_options_are_refused(host):
    with pytest.raises(UsageError, match="is not a valid SSH destination"):
        Ssh(host)
    if host:  # an empty host means "run here"
        with pytest.raises(UsageError, match="may not start with '-'"):
            LceTarget(host=host)


def test_double_dash_precedes_the_destination_in_every_call():
    s = Ssh("pi@board", port=2222, identity=None)
    ssh, scp = s._ssh(), s._scp()
    assert ssh[-2:] == ["--", "pi@board"] and ssh.index("-p") < ssh.index("--")
    assert scp[-1] == "--" and scp.index("-P") < scp.index("--")
    with pytest.raises(UsageError, match="valid: 1..65535"):
        Ssh("pi@board", port=70000)


def test_ssh_failure_output_goes_through_the_child_helper(tmp_path):
    """A real ssh call to a closed port: a clear DeployError, decoded output, no hang."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ssh = Ssh("127.0.0.1", port=port, known_hosts=tmp_path / "known_hosts")
    with pytest.raises(DeployError, match=f"cannot reach 127.0.0.1 port {port}: connection refused"):
        ssh.run("true", timeout=60)
