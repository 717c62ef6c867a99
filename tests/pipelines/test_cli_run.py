import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from tests.pipelines.pipeline_specs import tiny, to_toml

runner = CliRunner()


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    path = d / "tiny.toml"
    path.write_text(to_toml(tiny({"kind": "bench", "name": "bench_gpu", "artifact": "model", "device": "cuda"},
                                 rounds=1)))
    return path


def test_run_end_to_end_then_resume_with_json(spec):
    out = spec.parent / "runs"
    res = runner.invoke(app, ["run", str(spec), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "pipeline tiny: passed" in res.stdout and "bench_gpu" in res.stdout
    res = runner.invoke(app, ["run", str(spec), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert [s["resumed"] for s in rep["stages"]] == [True, True, True, False]
    assert rep["stages"][3]["status"] == "skipped" and "no CUDA GPU" in rep["stages"][3]["reason"]
    assert json.loads((Path(rep["run_dir"]) / "report.json").read_text())["stages"] == rep["stages"]


def test_dry_run_prints_the_plan_and_runs_nothing(spec, tmp_path):
    res = runner.invoke(app, ["run", str(spec), "--out", str(tmp_path), "--dry-run", "--json",
                              "--set", "imp.rounds=2"])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert [s["state"] for s in plan["stages"]] == ["run", "run", "run", "skip"]
    assert plan["stages"][1]["settings"]["rounds"] == 2
    assert not (tmp_path / "pipelines").exists()
    res = runner.invoke(app, ["run", str(spec), "--out", str(tmp_path), "--dry-run"])
    assert res.exit_code == 0 and "plan (nothing was run)" in res.stdout


def test_failed_gate_exits_1_with_measured_and_allowed(spec):
    out = spec.parent / "runs"
    res = runner.invoke(app, ["run", str(spec), "--out", str(out), "--quiet", "--set", "dense.gate.min_acc=0.99"])
    assert res.exit_code == 1, res.output
    assert "gate failed: stage 'dense': min_acc: measured" in res.output and ">= allowed 0.99 FAILED" in res.output


def test_require_all_and_bad_input_exit_2_without_traceback(spec, tmp_path):
    cases = [
        (["run", str(spec), "--out", str(tmp_path), "--require-all"], "cannot run here: no CUDA GPU"),
        (["run", "quikstart"], "unknown preset 'quikstart'. Valid presets:"),
        (["run", str(spec), "--set", "imp.roundz=2"], "unknown setting 'imp.roundz'"),
        (["run", str(spec), "--set", "imp.rounds=two"], "'imp.rounds' must be an integer"),
        (["run", str(spec), "--set", "dense.gate.max_latency_ratio=2"], "which a dense stage does not produce"),
        (["run", str(tmp_path / "nope.toml")], "does not exist"),
    ]
    for args, msg in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert msg in res.output and "Traceback" not in res.output, (args, res.output)
    assert not (tmp_path / "pipelines").exists()


def test_presets_listing():
    res = runner.invoke(app, ["presets", "--json"])
    assert res.exit_code == 0 and "quickstart" in json.loads(res.stdout)
    res = runner.invoke(app, ["presets", "--stages"])
    assert res.exit_code == 0 and "max_acc_drop" in res.stdout and "bench" in res.stdout
    stages = json.loads(runner.invoke(app, ["presets", "--stages", "--json"]).stdout)
    assert stages["imp"]["settings"]["rounds"] == 12 and stages["export_lce"]["default_gates"]["min_parity"] == 0.99


def test_default_relative_out_dir_works(spec, tmp_path, monkeypatch):
    """`lottery run` writes under ./runs by default: a relative root must not double artifact paths."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["run", str(spec), "--quiet"])
    assert res.exit_code == 0, res.output
    reports = list((tmp_path / "runs" / "pipelines").glob("tiny-*/report.json"))
    assert len(reports) == 1
    rep = json.loads(reports[0].read_text())
    imp = next(s for s in rep["stages"] if s["method"] == "imp")
    assert (reports[0].parent / imp["artifacts"]["ticket"] / "ticket.json").is_file()
