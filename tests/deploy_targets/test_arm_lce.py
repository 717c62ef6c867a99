"""LCE deploy target: `lottery export lce` of a ticket, then runs here and on a real OpenSSH server (127.0.0.1)."""

import getpass
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from typer.testing import CliRunner

import deploy_targets
from compress import models
from compress.binarize import BinaryConv2d, BinaryLinear
from compress.mask import Mask
from compress.ticket import Ticket
from compress.train import predict
from deploy_targets.arm_lce import LceTarget
from deploy_targets.ssh import DeployError
from pipelines.cli import app
from pipelines.report import schema
from tests.export.lce_nets import randomize_bn

pytestmark = pytest.mark.skipif(__import__("importlib").util.find_spec("larq_compute_engine") is None,
                                reason="larq-compute-engine (edge extra) not installed")
runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A pruned binary ticket (a user model via `module:factory`), exported with the CLI."""
    d = tmp_path_factory.mktemp("ticket")
    spec = models.ModelSpec("tests.export.lce_nets:binary_net", (1, 8, 8), 10)
    model = randomize_bn(models.build(spec, seed=0))
    mask = Mask.ones_like(model)
    for name, m in model.named_modules():
        if isinstance(m, (BinaryConv2d, BinaryLinear)):
            m.keep[:, 1::4] = False
            mask[f"{name}.weight"] = m.keep.clone()
    mask.apply(model)
    Ticket(spec, model.state_dict(), mask, meta={"dataset": "digits"}).save(d)
    res = runner.invoke(app, ["export", "lce", str(d), "--json", "--trust-code"])  # the ticket names user code
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    jsonschema.validate(rep, schema())
    rep["artifact"] = str(Path(rep["run_dir"]) / rep["artifacts"]["tflite"])
    rep["ticket_dir"] = str(d)
    return rep


def test_cli_export_writes_a_verified_tflite(exported):
    r, m, d = exported, exported["metrics"], exported["details"]
    path = Path(r["artifact"])
    assert path.is_file() and path.stat().st_size == m["file_bytes"] and (path.parent / "report.json").is_file()
    assert m["parity_agreement"] >= 0.99 and d["ternary"] and d["ops"]["LceBconv2d"] == 6
    assert d["binary_layer_bits"] == d["binary_layer_bits_limit"] and any("reference kernels" in n for n in r["notes"])
    assert m["packed_fraction"] == 1.0 and {g["gate"] for g in r["gates"]} == {"min_parity", "min_packed_fraction"}


def test_local_deploy_and_bench_target(exported):
    path = Path(exported["artifact"])
    res = runner.invoke(app, ["deploy", "edge", str(path), "--local", "--iterations", "5", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    jsonschema.validate(r, schema())
    m = r["metrics"]
    assert m["test_acc"] == pytest.approx(exported["metrics"]["test_acc"]) and r["details"]["samples"] == 360
    assert 0 < m["latency_ms_p50"] <= m["latency_ms_p90"] and r["details"]["threads"] == 1
    assert "reference kernels" in r["details"]["kernels"] and r["scope"]["dataset"] == "digits"
    target = deploy_targets.for_artifact(path, threads=1, warmup=1, iters=3)
    assert isinstance(target, LceTarget) and target.available()[0]
    bench = target.benchmark(path, (1, 8, 8), (1, 8))
    assert list(bench["batch"]) == ["1"] and bench["static_batch"] == 1
    from compress import data

    x, y = data.get("digits").split("test")
    ev = target.evaluate(path, x[:50].numpy(), y[:50].numpy())  # NCHW in, as `lottery bench` passes it
    assert ev["logits"].shape == (50, 10) and ev["samples"] == 50
    torch_logits = predict(Ticket.load(exported["ticket_dir"]).model(), x[:50]).numpy()
    assert np.abs(ev["logits"] - torch_logits).max() < 1e-3  # the NCHW -> NHWC layout is right


# --- a real OpenSSH server on 127.0.0.1 ------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if not Path("/usr/sbin/sshd").exists() or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-server is not installed (`.ci/setup test` installs it as root)")
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key", "stranger_key"):
        _keygen(d / name)
    shutil.copy(d / "client_key.pub", d / "authorized_keys")
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"UsePAM no\nStrictModes no\nPidFile {d / 'sshd.pid'}\nSubsystem sftp internal-sftp\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.skip(f"sshd did not start: {proc.stderr.read().decode()[-300:]}")
            time.sleep(0.1)
    host_pub = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    (d / "remote").mkdir()
    yield {"dir": d, "port": port, "host": f"{getpass.getuser()}@127.0.0.1"}
    proc.terminate()
    proc.wait(timeout=10)


def _target(sshd, **kw) -> LceTarget:
    opts = dict(host=sshd["host"], port=sshd["port"], identity=sshd["dir"] / "client_key",
                known_hosts=sshd["dir"] / "known_hosts", remote_python=sys.executable,
                remote_dir=str(sshd["dir"] / "remote"), iters=5, warmup=1)
    return LceTarget(**{**opts, **kw})


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_deploy_over_ssh_brings_back_latency_and_accuracy(exported, sshd):
    path = Path(exported["artifact"])
    res = runner.invoke(app, ["deploy", "edge", str(path), "--host", sshd["host"], "--port", str(sshd["port"]),
                              "--identity", str(sshd["dir"] / "client_key"), "--known-hosts",
                              str(sshd["dir"] / "known_hosts"), "--remote-python", sys.executable, "--remote-dir",
                              str(sshd["dir"] / "remote"), "--iterations", "5", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["details"]["where"] == sshd["host"] and r["details"]["device"]["lce"]
    assert r["metrics"]["test_acc"] == pytest.approx(exported["metrics"]["test_acc"])
    assert r["metrics"]["latency_ms_p50"] > 0 and list((sshd["dir"] / "remote").iterdir()) == []  # folder removed


@pytest.mark.parametrize("case, expected", [
    ("unreachable", "cannot reach"),
    ("auth", "authentication to"),
    ("host_key", "not in known_hosts"),
    ("no_python", "no working Python at '/nonexistent/python'"),
    ("no_lce", "lacks numpy and larq-compute-engine"),
    ("bad_model", "is not a TensorFlow Lite model"),
])
def test_ssh_failures_are_clear_and_leave_nothing_behind(exported, sshd, tmp_path, case, expected):
    d = sshd["dir"]
    (tmp_path / "known_hosts").write_text("")
    kw = {"unreachable": {"port": _free_port()}, "auth": {"identity": d / "stranger_key"},
          "host_key": {"known_hosts": tmp_path / "known_hosts"}, "no_python": {"remote_python": "/nonexistent/python"},
          "no_lce": {"remote_python": "/usr/bin/python3"}}.get(case, {})
    if case == "no_lce" and subprocess.run(["/usr/bin/python3", "-c", "import larq_compute_engine"],
                                           capture_output=True).returncode == 0:
        pytest.skip("the system python3 has LCE installed")
    artifact = Path(exported["artifact"])
    if case == "bad_model":  # a broken file: refused before anything is copied to the device
        artifact = tmp_path / "broken.tflite"
        artifact.write_bytes(b"not a flatbuffer" * 8)
    before = _digest(artifact)
    with pytest.raises(Exception, match=expected) as err:
        _target(sshd, **kw).run(artifact)
    assert isinstance(err.value, DeployError) or case == "bad_model"
    assert _digest(artifact) == before and list((d / "remote").iterdir()) == []


def test_accept_new_host_key_trusts_a_first_seen_device(sshd, tmp_path, exported):
    known = tmp_path / "known_hosts"
    known.write_text("")
    with pytest.raises(DeployError, match="no working Python"):  # got past the host key check
        _target(sshd, known_hosts=known, accept_new_host_key=True, remote_python="/nonexistent/python").run(
            Path(exported["artifact"]))
    assert (sshd["dir"] / "host_key.pub").read_text().split()[1] in known.read_text()  # recorded (maybe hashed)


def test_edge_cli_refuses_host_and_local_together_and_hosts_that_look_like_options(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    res = runner.invoke(app, ["deploy", "edge", str(model), "--local", "--host", "pi@board", "--dataset", "digits"])
    assert res.exit_code == 2 and "not both" in res.output
    res = runner.invoke(app, ["deploy", "edge", str(model), "--host=-oProxyCommand=x", "--dataset", "digits"])
    assert res.exit_code == 2 and "would reach ssh as an option" in res.output and "Traceback" not in res.output
    assert np.array_equal(np.frombuffer(model.read_bytes(), np.uint8), np.frombuffer(b"x", np.uint8))


def test_a_binary_export_with_nothing_bit_packed_fails_its_default_gate(tmp_path):
    """Binary weights on float activations stay float ops in LCE: the default min_packed_fraction gate says so."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "export"))
    from ticket_factory import make_ticket

    src = make_ticket(tmp_path / "float", density=0.5)
    res = runner.invoke(app, ["binarize", str(src), "--act", "float", "--iterations", "2", "--json"])
    assert res.exit_code == 0, res.output
    binary = json.loads(res.stdout)
    res = runner.invoke(app, ["export", "lce", str(Path(binary["run_dir"]) / binary["artifacts"]["binary_ticket"]),
                              "--json"])
    assert res.exit_code == 1, res.output
    rep = jsonschema.validate(json.loads(res.stdout), schema()) or json.loads(res.stdout)
    gate = next(g for g in rep["gates"] if g["gate"] == "min_packed_fraction")
    assert rep["metrics"]["packed_fraction"] == 0.0 and not gate["passed"] and rep["status"] == "failed"
