"""The one-definition contract: flags come from settings dataclasses, commands are one-stage pipelines (same
bytes as `lottery run`), every report validates against the shipped schema, parity is a gate (exit 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import typer
from typer.testing import CliRunner

from pipelines import registry
from pipelines.cli import app
from pipelines.cli.commands import INPUTS_OWN, method_flags, show
from pipelines.report import schema
from tests.pipelines.pipeline_specs import TRAIN, to_toml

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
TINY = ["--dataset", "digits", "--width", "0.25", "--epochs", "1", "--batch-size", "64"]


def valid(report: dict) -> dict:
    jsonschema.validate(report, schema())
    return report


def _click(words: tuple[str, ...]):
    cmd = typer.main.get_command(app)
    for w in words:
        cmd = cmd.commands[w]
    return cmd


@pytest.mark.parametrize("method", [m.name for m in registry.all_methods() if m.command])
def test_help_defaults_are_the_settings_dataclass_defaults(method):
    m = registry.get(method)
    scope_flags, setting_flags = method_flags(m)
    defaults = {d: v for d, f, v, _ in m.settings.leaves() if f.metadata.get("cli") is not False}
    params = {p.name: p for p in _click(m.command).params}
    assert {f.dotted for f in setting_flags} == set(defaults)  # every setting is a flag, nothing else is
    for f in setting_flags:
        assert params[f.param].show_default == show(defaults[f.dotted]), f.dotted
    for f in scope_flags:
        assert params[f.param].show_default in (show(f.default), INPUTS_OWN)


def test_help_text_shows_a_default_from_the_dataclass():
    res = runner.invoke(app, ["find", "imp", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "Pruning rounds after the dense run" in res.stdout and "(12)" in res.stdout


def test_start_up_and_help_import_no_torch():
    code = ("import sys, pipelines.cli\nfrom pipelines import registry\nregistry.all_methods()\n"
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, sorted(m for m in sys.modules "
            "if m.startswith(('torch', 'numpy')))[:5]\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def command_imp(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmd")
    res = runner.invoke(app, ["find", "imp", *TINY, "--rounds", "1", "--controls", "random", "--out", str(out),
                              "--json"])
    assert res.exit_code == 0, res.output
    return valid(json.loads(res.stdout))


def _run_one(tmp: Path, stage: dict, scope: dict) -> dict:
    spec = tmp / f"{stage['kind']}.toml"
    spec.write_text(to_toml({"pipeline": {"name": "one", **scope}, "stages": [stage]}))
    res = runner.invoke(app, ["run", str(spec), "--out", str(tmp / "runs"), "--json"])
    assert res.exit_code == 0, res.output
    rep = valid(json.loads(res.stdout))
    return rep["stages"][0] | {"root": rep["run_dir"]}


def _same_bytes(a: Path, b: Path, names: tuple[str, ...]) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


TICKET = ("ticket.json", "init.safetensors", "mask.safetensors", "final.safetensors")


def test_command_and_one_stage_run_give_byte_identical_tickets_and_artifacts(command_imp, tmp_path):
    scope = {"dataset": "digits", "width": 0.25}
    stage = _run_one(tmp_path, {"kind": "imp", "rounds": 1, "train": {"epochs": 1, "batch_size": 64},
                                "controls": {"controls": ["random"]}}, scope)
    cmd_ticket = Path(command_imp["run_dir"]) / command_imp["artifacts"]["ticket"]
    run_ticket = Path(stage["root"]) / stage["artifacts"]["ticket"]
    assert stage["key"] == command_imp["key"]  # the same method, settings and scope: the same stage
    _same_bytes(cmd_ticket, run_ticket, TICKET)
    # binarize and export onnx, each from that ticket: command vs one-stage run with an explicit input
    for words, kind, extra, files in ((["binarize"], "binarize", {"train": {"iterations": 3, "batch_size": 64}},
                                       [f"ticket/{n}" for n in TICKET]),
                                      (["export", "onnx"], "export_onnx", {}, ["model.onnx"])):
        flags = ["--iterations", "3", "--batch-size", "64"] if kind == "binarize" else []
        res = runner.invoke(app, [*words, str(cmd_ticket), *flags, "--json", "--out", str(tmp_path / kind)])
        assert res.exit_code == 0, res.output
        cmd = valid(json.loads(res.stdout))
        one = _run_one(tmp_path, {"kind": kind, "input": str(cmd_ticket), **extra}, scope)
        _same_bytes(Path(cmd["run_dir"]), Path(one["root"]) / one["dir"], tuple(files))


def test_every_command_report_validates(command_imp, tmp_path):
    assert command_imp["kind"] == "method" and command_imp["method"] == "imp" and command_imp["status"] == "passed"
    assert command_imp["details"]["levels"] and command_imp["inputs"] == []
    ticket = Path(command_imp["run_dir"]) / command_imp["artifacts"]["ticket"]
    res = runner.invoke(app, ["finetune", str(ticket), "--epochs", "1", "--batch-size", "64", "--json"])
    assert res.exit_code == 0, res.output
    ft = valid(json.loads(res.stdout))
    assert ft["inputs"][0]["kind"] == "model" and len(ft["inputs"][0]["sha256"]) == 64
    res = runner.invoke(app, ["export", "onnx", str(ticket), "--json"])
    onnx = valid(json.loads(res.stdout))
    model = Path(onnx["run_dir"]) / onnx["artifacts"]["onnx"]
    res = runner.invoke(app, ["bench", str(model), "--iterations", "3", "--warmup", "1", "--json"])
    assert res.exit_code == 0, res.output
    bench = valid(json.loads(res.stdout))
    assert bench["metrics"]["test_acc"] == onnx["metrics"]["test_acc"]  # measured once by the export, reused
    assert "measured once" in bench["details"]["accuracy_from"] and bench["metrics"]["speedup_vs_torch"] > 0
    res = runner.invoke(app, ["compare", command_imp["run_dir"], "--out", str(tmp_path / "cmp"), "--json"])
    assert res.exit_code == 0, res.output
    valid(json.loads((tmp_path / "cmp" / "report.json").read_text()))
    for p in Path(command_imp["run_dir"]).parent.parent.rglob("report.json"):
        valid(json.loads(p.read_text()))


def test_a_perturbed_artifact_fails_its_parity_gate_with_exit_1(command_imp, tmp_path, monkeypatch):
    import export.fold_bn as fold

    real = fold.fold_batchnorm

    def corrupting(model):  # an exporter bug: the exported graph no longer computes the ticket's function
        folded, rep = real(model)
        with __import__("torch").no_grad():
            next(m for m in folded.modules() if hasattr(m, "bias") and m.bias is not None).bias.add_(5.0)
        return folded, rep

    monkeypatch.setattr(fold, "fold_batchnorm", corrupting)
    ticket = Path(command_imp["run_dir"]) / command_imp["artifacts"]["ticket"]
    res = runner.invoke(app, ["export", "onnx", str(ticket), "--out", str(tmp_path), "--json"])
    assert res.exit_code == 1, res.output
    rep = valid(json.loads(res.stdout))
    assert rep["status"] == "failed" and rep["gate"] == "fail"
    failed = {g["gate"]: g for g in rep["gates"] if not g["passed"]}
    assert "max_parity_diff" in failed and failed["max_parity_diff"]["measured"] > 1e-3
    assert "FAILED" in failed["max_parity_diff"]["detail"]
    assert (Path(rep["run_dir"]) / rep["artifacts"]["onnx"]).is_file()  # kept, marked failed in its report
    assert "gate failed: stage 'export_onnx'" in res.stderr


def test_tensorrt_refusal_writes_a_valid_report(command_imp, tmp_path):
    ticket = Path(command_imp["run_dir"]) / command_imp["artifacts"]["ticket"]
    onnx = json.loads(runner.invoke(app, ["export", "onnx", str(ticket), "--json"]).stdout)
    model = Path(onnx["run_dir"]) / onnx["artifacts"]["onnx"]
    res = runner.invoke(app, ["export", "tensorrt", str(model), "--out", str(tmp_path)])
    assert res.exit_code == 2, res.output
    (report,) = tmp_path.glob("export_tensorrt-*/report.json")
    rep = valid(json.loads(report.read_text()))
    assert rep["status"] == "skipped" and rep["reason"] and (report.parent / "build_engine.sh").is_file()


def test_training_settings_are_the_same_object_in_a_pipeline_stage():
    from pipelines.spec import parse

    spec = parse({"pipeline": {}, "stages": [{"kind": "binarize", "input": "x"}, {"kind": "mpt"}]})
    assert spec.stages[0].hp.act == "binary" and spec.stages[1].hp.act == "binary"  # one default each, everywhere
    assert spec.stages[1].hp.scores.lr == registry.get("mpt").settings().scores.lr
    assert TRAIN["epochs"] == 1


def test_shell_completion_knows_the_generated_commands_and_flags():
    env = {"_LOTTERY_COMPLETE": "complete_bash", "COMP_WORDS": "lottery export onnx x --spar", "COMP_CWORD": "4"}
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli"], env={**__import__("os").environ, **env},
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.stdout.split() == ["--sparse-storage"], proc.stderr
