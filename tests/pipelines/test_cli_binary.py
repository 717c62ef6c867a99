import json
from pathlib import Path

from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()
TINY = ["--model", "conv2", "--dataset", "digits", "--width", "0.25", "--set", "train.iterations=3",
        "--set", "scores.iterations=3", "--batch-size", "64"]


def test_find_mpt_binary_then_reload(tmp_path):
    res = runner.invoke(app, ["find", "mpt", *TINY, "--keep", "0.5", "--act", "binary", "--out", str(tmp_path),
                              "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["hparams"]["act"] == "binary" and [r["level"] for r in report["levels"]] == [0, 1]
    assert report["bits"]["1"]["bits_total"] < report["bits"]["0"]["bits_total"] / 8
    rows = report["bits"]["1"]["layers"]
    assert [r["weight_bits"] for r in rows if r["kind"].startswith("Binary")] == [1] * 5
    assert [r["act_bits"] for r in rows if r["kind"].startswith("Binary")] == [32, 1, 1, 1, 1]
    level1 = Path(report["run_dir"]) / "seed-0" / "level-1"
    assert (level1 / "scores.safetensors").is_file()
    meta = json.loads((level1 / "ticket.json").read_text())["meta"]
    assert meta["binary"]["act"] == "binary" and meta["binary"]["padding"] == "one"


def test_find_mpt_prints_per_layer_summary(tmp_path):
    res = runner.invoke(app, ["find", "mpt", *TINY, "--keep", "0.2", "--no-baseline", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "MPT-1/32 (keep 0.2)" in res.stdout and "BinaryConv2d" in res.stdout and "1-bit" in res.stdout


def test_binarize_command_prints_summary(tmp_path):
    res = runner.invoke(app, ["find", "imp", "--model", "conv2", "--dataset", "digits", "--width", "0.25",
                              "--iterations", "3", "--rounds", "1", "--controls", "none", "--out", str(tmp_path),
                              "--json"])
    assert res.exit_code == 0, res.output
    run = json.loads(res.stdout)["run_dir"]
    res = runner.invoke(app, ["binarize", run, "--level", "1", "--epochs", "0.05"])
    assert res.exit_code == 0, res.output
    assert "BinaryConv2d" in res.stdout and "1-bit" in res.stdout and "ternary" in res.stdout


def test_bad_input_exit_2_without_traceback(tmp_path):
    res = runner.invoke(app, ["find", "mpt", *TINY, "--keep", "0", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "keep must be in (0.0, 1.0]" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["find", "mpt", *TINY, "--act", "ternary", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "act must be one of float, binary" in res.output
    (tmp_path / "empty" / "seed-0").mkdir(parents=True)
    res = runner.invoke(app, ["binarize", str(tmp_path / "empty")])
    assert res.exit_code == 2 and "no finished ticket" in res.output
