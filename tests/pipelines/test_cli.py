import json
from pathlib import Path

from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()
TINY = ["--dataset", "digits", "--width", "0.25", "--epochs", "1", "--rounds", "1", "--batch-size", "64"]


def test_find_imp_end_to_end_with_json(tmp_path):
    res = runner.invoke(app, ["find", "imp", *TINY, "--seeds", "2", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["seeds"] == [0, 1] and [r["level"] for r in report["levels"]] == [0, 1]
    assert len(report["levels"][1]["test_acc_per_seed"]) == 2
    run = Path(report["run_dir"])
    assert (run / "report.json").is_file() and (run / "accuracy_vs_density.png").is_file()


def test_find_imp_prints_table(tmp_path):
    res = runner.invoke(app, ["find", "imp", *TINY, "--out", str(tmp_path), "--controls", "reinit"])
    assert res.exit_code == 0, res.output
    assert "reinit" in res.stdout and "density" in res.stdout and "random" not in res.stdout.split("verdict")[0]


def test_listings():
    for cmd, expected in (("models", "lenet_300_100"), ("datasets", "mnist5k"), ("finders", "imp")):
        res = runner.invoke(app, [cmd])
        assert res.exit_code == 0 and expected in res.stdout
    assert "conv4" in json.loads(runner.invoke(app, ["models", "--json"]).stdout)


def test_bad_input_is_one_clear_line_and_exit_2(tmp_path):
    cases = [
        (["--rate", "1.2"], "rate must be in"),
        (["--model", "lenet5"], "Valid models:"),
        (["--dataset", "mnits"], "Valid datasets:"),
        (["--rounds", "0"], "rounds must be >= 1"),
        (["--model", "conv8", "--dataset", "digits", "--width", "0.25"], "too small"),
        (["--dataset", "cifar10", "--data-root", str(tmp_path)], "cifar-10-batches-py"),
        (["--set", "train.nope=1"], "unknown setting 'train.nope'"),
    ]
    for args, msg in cases:
        res = runner.invoke(app, ["find", "imp", "--out", str(tmp_path), *args])
        assert res.exit_code == 2, (args, res.output)
        assert msg in res.output, (args, res.output)
        assert "Traceback" not in res.output
    res = runner.invoke(app, ["find", "magic"])
    assert res.exit_code == 2 and "No such command" in res.output


def test_model_input_mismatch_names_both_shapes(tmp_path):
    res = runner.invoke(app, ["find", "imp", "--model", "tv:resnet18", "--dataset", "digits", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "(1, 8, 8)" in res.output
