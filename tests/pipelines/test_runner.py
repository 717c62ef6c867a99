import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compress.errors import BackendUnavailableError, GateFailedError
from compress.io import load_json
from pipelines.runner import Pipeline
from tests.pipelines.pipeline_specs import tiny, to_toml

ROOT = Path(__file__).resolve().parents[2]
GPU = {"kind": "bench", "name": "bench_gpu", "artifact": "model", "device": "cuda", "iterations": 5}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished tiny pipeline (dense -> imp -> bench -> a GPU bench skipped here)."""
    out = tmp_path_factory.mktemp("runs")
    pipe = Pipeline(tiny(GPU), "tiny")
    return pipe, out, pipe.run(out)


def _result_mtimes(root: Path) -> dict[str, float]:
    return {p.parent.name: p.stat().st_mtime_ns for p in root.glob("*/result.json")}


def test_run_writes_stage_dirs_results_and_gates(finished):
    pipe, out, rep = finished
    root = pipe.root(out)
    assert rep["status"] == "passed" and root.name.startswith("tiny-")
    names = [s["name"] for s in rep["stages"]]
    assert names == ["dense", "imp", "bench", "bench_gpu"]
    dense, imp, bench, gpu = rep["stages"]
    for s in (dense, imp, bench):
        assert s["status"] == "passed" and s["gate"] == "pass"
        assert (root / s["dir"] / "result.json").is_file() and s["dir"] == f"{s['index']:02d}-{s['name']}-{s['key']}"
    assert imp["metrics"]["density"] < 0.9 and 0 <= imp["metrics"]["agreement"] <= 1
    assert imp["metrics"]["storage_bytes"] < dense["metrics"]["storage_bytes"]
    assert imp["metrics"]["file_bytes"] == dense["metrics"]["file_bytes"]  # dense float storage on disk either way
    assert bench["metrics"]["test_acc"] == imp["metrics"]["test_acc"]  # measured once, reused
    assert "latency_ratio" in bench["metrics"] and bench["details"]["target"] == "torch"
    drop = next(g for g in imp["gates"] if g["gate"] == "max_acc_drop")
    assert drop["measured"] == pytest.approx(dense["metrics"]["test_acc"] - imp["metrics"]["test_acc"])
    assert (root / imp["artifacts"]["ticket"] / "ticket.json").is_file()
    assert gpu["status"] == "skipped" and gpu["gate"] == "skipped" and "no CUDA GPU" in gpu["reason"]
    assert not list(root.glob("04-*"))
    # IMP's level 0 is the dense stage's network, not a second training of it.
    level0 = load_json(root / imp["artifacts"]["ticket"] / ".." / "level-0" / "ticket.json")
    dense_ticket = load_json(root / dense["artifacts"]["ticket"] / "ticket.json")
    assert level0["files"]["final.safetensors"] == dense_ticket["files"]["final.safetensors"]


def test_report_files_agree_with_report_json(finished):
    pipe, out, rep = finished
    root = pipe.root(out)
    on_disk = load_json(root / "report.json")
    assert on_disk["status"] == rep["status"] and [s["key"] for s in on_disk["stages"]] == [
        s["key"] for s in rep["stages"]]
    md = (root / "report.md").read_text()
    for s in on_disk["stages"]:
        row = next(line for line in md.splitlines() if line.startswith(f"| {s['index']} | {s['name']} |"))
        assert f"| {s['gate']} |" in row and s["status"] in row
        if s["metrics"].get("test_acc") is not None:
            assert f"{100 * s['metrics']['test_acc']:.2f}%" in row
    assert set(on_disk["plots"]) == {"accuracy_vs_density.png", "size_per_stage.png", "latency_per_target.png"}
    for p in on_disk["plots"]:
        assert (root / p).stat().st_size > 1000 and f"]({p})" in md


def test_resume_skips_finished_stages(finished):
    pipe, out, _ = finished
    before = _result_mtimes(pipe.root(out))
    rep = Pipeline(tiny(GPU), "tiny").run(out)
    assert [s["resumed"] for s in rep["stages"]] == [True, True, True, False]
    assert _result_mtimes(pipe.root(out)) == before
    assert [p["state"] for p in pipe.plan(out)] == ["done", "done", "done", "skip"]


def test_changed_setting_reruns_exactly_that_stage_and_later(finished):
    pipe, out, first = finished
    changed = pipe.with_settings(["imp.rounds=1"])
    plan = changed.plan(out)
    assert [p["state"] for p in plan] == ["done", "run", "run", "skip"]
    assert plan[0]["key"] == first["stages"][0]["key"]
    assert plan[1]["key"] != first["stages"][1]["key"] and plan[2]["key"] != first["stages"][2]["key"]
    # A gate threshold is not part of any key: relaxing or tightening it reruns nothing.
    assert [p["state"] for p in pipe.with_settings(["imp.gate.max_density=0.5"]).plan(out)][:3] == ["done"] * 3
    # A change to the last stage only reruns the last stage.
    assert [p["state"] for p in pipe.with_settings(["bench.batch_sizes=[2]"]).plan(out)][:3] == [
        "done", "done", "run"]
    # A pipeline-wide setting changes the run directory: nothing is reused, nothing is overwritten.
    assert changed.with_settings(["pipeline.seed=1"]).root(out) != pipe.root(out)


def test_failed_gate_stops_marks_measured_vs_allowed_and_keep_going(finished):
    pipe, out, _ = finished
    strict = pipe.with_settings(["imp.gate.max_density=0.01"])
    rep = strict.run(out)
    assert rep["status"] == "failed"
    imp = rep["stages"][1]
    gate = next(g for g in imp["gates"] if g["gate"] == "max_density")
    assert imp["status"] == "failed" and not gate["passed"] and gate["allowed"] == 0.01
    assert gate["measured"] == pytest.approx(imp["metrics"]["density"]) and "FAILED" in gate["detail"]
    assert [s["status"] for s in rep["stages"][2:]] == ["not_run", "not_run"]
    assert "gate failure at stage 'imp'" in rep["stages"][2]["reason"]
    rep = strict.run(out, keep_going=True)
    assert rep["status"] == "failed" and [s["status"] for s in rep["stages"]] == [
        "passed", "failed", "passed", "skipped"]
    with pytest.raises(GateFailedError, match=r"stage 'imp': max_density: measured .* <= allowed 0.01 FAILED"):
        strict.run(out, check=True)


def test_require_all_refuses_a_gpu_stage_without_gpu(finished):
    pipe, out, _ = finished
    with pytest.raises(BackendUnavailableError, match=r"stage 'bench_gpu' cannot run here: no CUDA GPU"):
        pipe.run(out, require_all=True)


def test_kill_mid_stage_then_resume(tmp_path):
    """kill -9 during the IMP stage: dense and IMP's finished levels are reused, the rest runs."""
    raw = tiny(controls=("reinit",), rounds=3)
    spec = tmp_path / "tiny.toml"
    spec.write_text(to_toml(raw))
    pipe = Pipeline.from_toml(spec)
    root = pipe.root(tmp_path / "runs")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", str(spec), "--out", str(tmp_path / "runs"),
                             "--quiet"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    level1 = None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        hits = list(root.glob("02-imp-*/seed-0/level-1/ticket.json"))
        if hits:
            level1 = hits[0]
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert level1 is not None, "the IMP stage never finished level 1"
    assert not list(root.glob("02-imp-*/result.json")), "the IMP stage finished before it could be killed"
    dense_result = next(root.glob("01-dense-*/result.json"))
    stamps = (dense_result.stat().st_mtime_ns, level1.stat().st_mtime_ns)
    rep = pipe.run(tmp_path / "runs")
    assert rep["status"] == "passed"
    assert [s["resumed"] for s in rep["stages"]] == [True, False, False]
    assert (dense_result.stat().st_mtime_ns, level1.stat().st_mtime_ns) == stamps
    assert [r["level"] for r in rep["stages"][1]["details"]["levels"]] == list(range(4))
