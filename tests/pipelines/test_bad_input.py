"""Never a traceback, never a silent wrong answer, never an earlier result lost (issue 12), at the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from tests.pipelines.pipeline_specs import tiny, to_toml

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
TINY = ["--width", "0.25", "--epochs", "1", "--batch-size", "64", "--rounds", "1", "--controls", "none"]


def _npz(path: Path, **changes) -> Path:
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.normal(size=(200, 6)).astype(np.float32), "y_train": np.arange(200) % 4,
              "x_test": rng.normal(size=(40, 6)).astype(np.float32), "y_test": np.arange(40) % 4}
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


def _fails(args: list[str], msg: str, code: int = 2) -> str:
    res = runner.invoke(app, args)
    out = " ".join(res.output.replace("│", " ").split())
    assert res.exit_code == code, (args, res.output)
    assert msg in out, (args, res.output)
    assert "Traceback" not in res.output, (args, res.output)
    return out


def test_bad_data_is_refused_before_anything_is_written(tmp_path):
    nan_x = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    nan_x[::10, 2] = np.nan
    cases = [
        (_npz(tmp_path / "nan.npz", x_train=nan_x), "x_train holds 20 non-finite values"),
        (_npz(tmp_path / "neg.npz", y_train=np.where(np.arange(200) == 7, -3, np.arange(200) % 4)),
         "negative label -3"),
        (_npz(tmp_path / "unseen.npz", y_test=np.arange(40) % 5), "y_test holds label 4"),
        (_npz(tmp_path / "one.npz", y_train=np.zeros(200, int), y_test=np.zeros(40, int)), "at least two classes"),
        (_npz(tmp_path / "empty.npz", x_test=np.zeros((0, 6), np.float32), y_test=np.zeros(0, int)), "empty"),
    ]
    for path, msg in cases:
        out = tmp_path / f"out-{path.stem}"
        _fails(["find", "imp", "--dataset", f"npz:{path}", *TINY, "--out", str(out)], msg)
        assert not out.exists(), path  # checked before the first folder


def test_user_code_and_specs_that_break(tmp_path):
    _fails(["find", "imp", "--model", "tests.pipelines.user_models:broken", "--dataset", "digits",
            "--out", str(tmp_path)], "this factory cannot build anything")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes("[pipeline]\nname = \"caf\xe9\"\n".encode("latin-1"))
    _fails(["run", str(bad)], "is not UTF-8 text")
    empty = tmp_path / "empty.toml"
    empty.write_text("[pipeline]\nname = \"x\"\n")
    _fails(["run", str(empty)], "needs at least one [[stages]] table")  # rich markup did not eat it
    spec = tmp_path / "unknown.toml"
    raw = tiny()
    raw["pipeline"]["model"] = "lenet5"
    spec.write_text(to_toml(raw))
    _fails(["run", str(spec), "--dry-run", "--out", str(tmp_path / "runs")], "unknown model 'lenet5'")
    _fails(["run", str(spec), "--out", str(tmp_path / "runs")], "unknown model 'lenet5'")
    assert not (tmp_path / "runs").exists()
    afile = tmp_path / "a_file"
    afile.write_text("x")
    _fails(["find", "imp", "--dataset", "digits", *TINY, "--out", str(afile)], "is a file")
    _fails(["run", str(spec), "--out", str(afile)], "is a file")


def test_an_unexpected_error_is_one_paragraph_exit_3_and_a_saved_traceback(tmp_path):
    out = _fails(["find", "imp", "--model", "tests.pipelines.user_models:bomb", "--dataset", "digits", *TINY,
                  "--out", str(tmp_path)], "unexpected error (ZeroDivisionError)", code=3)
    (log,) = tmp_path.rglob("error.log")
    assert "ZeroDivisionError: a bug in the user's forward" in log.read_text() and str(log) in out
    rep = json.loads((log.parent / "report.json").read_text())
    assert rep["status"] == "error" and "a bug in the user's forward" in rep["reason"]
    res = runner.invoke(app, ["find", "imp", "--model", "tests.pipelines.user_models:bomb", "--dataset", "digits",
                              *TINY, "--out", str(tmp_path), "--debug"])
    assert isinstance(res.exception, ZeroDivisionError)  # --debug: the real traceback


def test_tampered_tickets_and_untrusted_code(tmp_path):
    a = json.loads(runner.invoke(app, ["find", "imp", "--dataset", "digits", *TINY, "--out", str(tmp_path / "a"),
                                       "--json"]).stdout)
    b = json.loads(runner.invoke(app, ["find", "imp", "--dataset", "digits", *TINY, "--seed", "1", "--out",
                                       str(tmp_path / "b"), "--json"]).stdout)
    ta, tb = (Path(r["run_dir"]) / r["artifacts"]["ticket"] for r in (a, b))
    (ta / "final.safetensors").write_bytes((tb / "final.safetensors").read_bytes())  # swapped in from another run
    _fails(["finetune", str(ta)], "final.safetensors")
    info = json.loads((tb / "ticket.json").read_text())
    info["spec"]["input_shape"] = [1, 9, 9]
    (tb / "ticket.json").write_text(json.dumps(info))
    _fails(["export", "onnx", str(tb)], "does not fit")
    # a run dir naming module:factory is code: imported only with --trust-code
    user = json.loads(runner.invoke(app, ["find", "imp", "--model", "tests.pipelines.user_models:small", "--dataset",
                                          "digits", *TINY, "--out", str(tmp_path / "u"), "--json"]).stdout)
    ticket = Path(user["run_dir"]) / user["artifacts"]["ticket"]
    _fails(["export", "onnx", str(ticket)], "Pass --trust-code")
    res = runner.invoke(app, ["export", "onnx", str(ticket), "--trust-code"])
    assert res.exit_code == 0, res.output


def _spawn(spec: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", str(spec), "--out", str(out), "--quiet"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_identical_runs_the_second_exits_2_then_kill_marks_interrupted(tmp_path):
    raw = tiny(rounds=3)
    raw["stages"][1]["train"]["epochs"] = 400  # long enough to be caught running (it is killed below)
    spec = tmp_path / "tiny.toml"
    spec.write_text(to_toml(raw))
    out = tmp_path / "runs"
    first = _spawn(spec, out)
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.glob("pipelines/*/02-imp-*/stage.json")):
        time.sleep(0.05)
    assert first.poll() is None, first.communicate()
    start = time.time()
    second = _spawn(spec, out)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2 and "is in use by" in err and "pid" in err, err
    assert time.time() - start < 60  # at once, not after the first finishes
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    res = runner.invoke(app, ["run", str(spec), "--out", str(out), "--dry-run"])
    assert res.exit_code == 0 and "interrupted" in res.output, res.output
    (report,) = out.glob("pipelines/*/report.json")
    assert json.loads(report.read_text())["status"] == "running"  # a dry run changes nothing


@pytest.mark.parametrize("content", [os.urandom(256), b"\x1c\x00\x00\x00TFL3" + os.urandom(300)])
def test_garbage_tflite_is_refused_by_deploy_and_bench(tmp_path, content):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(content)
    for args in (["deploy", "edge", str(bad), "--local", "--dataset", "digits"],
                 ["bench", str(bad), "--dataset", "digits"]):
        out = _fails(args, "model.tflite")
        assert "\\x" not in out
    assert bad.read_bytes() == content
    assert not list(tmp_path.glob("*/lottery-edge-*")) and not list(tmp_path.glob("lottery-edge-*"))
