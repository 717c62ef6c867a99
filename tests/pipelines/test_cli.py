import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from compress.ticket import Ticket
from pipelines.cli import app

runner = CliRunner()
TINY = ["--dataset", "digits", "--width", "0.25", "--epochs", "1", "--rounds", "1", "--batch-size", "64"]


def test_find_imp_end_to_end_with_json(tmp_path):
    res = runner.invoke(app, ["find", "imp", *TINY, "--seeds", "2", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    levels = report["details"]["levels"]
    assert report["details"]["seeds"] == [0, 1] and [r["level"] for r in levels] == [0, 1]
    assert len(levels[1]["test_acc_per_seed"]) == 2
    run = Path(report["run_dir"])
    assert (run / "report.json").is_file() and (run / "accuracy_vs_density.png").is_file()
    assert run.parent.name == "lenet_300_100-digits" and run.name == f"imp-{report['key']}"


def test_find_imp_prints_table(tmp_path):
    res = runner.invoke(app, ["find", "imp", *TINY, "--out", str(tmp_path), "--controls", "reinit"])
    assert res.exit_code == 0, res.output
    assert "reinit" in res.stdout and "density" in res.stdout and "random" not in res.stdout.split("verdict")[0]
    res = runner.invoke(app, ["find", "imp", *TINY, "--out", str(tmp_path), "--controls", "none", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["settings"]["controls"]["controls"] == []


def test_listings():
    for cmd, expected in (("models", "lenet_300_100"), ("datasets", "mnist5k"), ("methods", "imp")):
        res = runner.invoke(app, [cmd])
        assert res.exit_code == 0 and expected in res.stdout
    assert "conv4" in json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    methods = json.loads(runner.invoke(app, ["methods", "--json"]).stdout)
    assert {"grasp", "snip", "synflow", "random", "imp", "mpt", "bench", "export_onnx"} <= set(methods)


def test_bad_input_is_one_clear_line_and_exit_2(tmp_path):
    cases = [
        (["find", "imp", "--rate", "1.2"], "rate must be in"),
        (["find", "imp", "--model", "lenet5"], "Valid models:"),
        (["find", "imp", "--dataset", "mnits"], "Valid datasets:"),
        (["find", "imp", "--rounds", "0"], "rounds must be >= 1"),
        (["find", "imp", "--model", "conv8", "--dataset", "digits", "--width", "0.25"], "too small"),
        (["find", "imp", "--dataset", "cifar10", "--data-root", str(tmp_path)], "cifar-10-batches-py"),
        (["find", "imp", "--set", "train.nope=1"], "unknown setting 'train.nope'"),
        (["find", "imp", "--set", "rounds"], "--set needs KEY=VALUE"),
        (["find", "imp", "--gate", "min_acc"], "--gate needs NAME=VALUE"),
        (["find", "imp", "--gate", "max_latency_ratio=2"], "which a imp stage does not produce"),
        (["find", "grasp", "--sparsity", "1.0"], "sparsity must be in [0.0, 1.0)"),
        (["find", "snip", "--selection", "4:4"], "1 <= N < M"),
        (["find", "grasp", "--score-batches", "0", "--dataset", "digits", "--width", "0.25", "--epochs", "1"],
         "needs data"),
        (["find", "imp", "--selection", "2:1"], "1 <= N < M"),
        (["find", "mpt", "--keep", "0"], "keep must be in (0.0, 1.0]"),
        (["finetune", str(tmp_path / "missing")], "does not exist"),
        (["binarize", str(tmp_path)], "no finished ticket"),
        (["compare", str(tmp_path)], "no report.json"),
    ]
    for args, msg in cases:
        res = runner.invoke(app, [*args, "--out", str(tmp_path)] if args[0] in ("find",) else args)
        assert res.exit_code == 2, (args, res.output)
        assert msg in " ".join(res.output.split()), (args, res.output)
        assert "Traceback" not in res.output
    res = runner.invoke(app, ["find", "magic"])
    assert res.exit_code == 2 and "No such command" in res.output
    res = runner.invoke(app, ["find", "mpt", "--act", "ternary"])
    assert res.exit_code == 2 and "'ternary' is not one of 'binary'," in res.output and "'float'" in res.output


def test_model_input_mismatch_names_both_shapes(tmp_path):
    res = runner.invoke(app, ["find", "imp", "--model", "tv:resnet18", "--dataset", "digits", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "(1, 8, 8)" in res.output


def test_pai_untrained_then_retrain_then_compare(tmp_path):
    tiny = ["--dataset", "digits", "--width", "0.25", "--epochs", "1", "--batch-size", "64", "--sparsity", "0.8"]
    res = runner.invoke(app, ["find", "snip", *tiny, "--no-trained", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    run = Path(json.loads(res.stdout)["run_dir"])
    assert (run / "seed-0" / "level-1" / "ticket.json").is_file() and not (run / "seed-0" / "level-0").exists()
    res = runner.invoke(app, ["retrain", str(run), "--controls", "random", "--epochs", "1", "--json"])
    assert res.exit_code == 0, res.output
    tuned = json.loads(res.stdout)
    levels = tuned["details"]["levels"]
    assert [r["level"] for r in levels] == [0, 1] and levels[1]["random_test_acc_mean"] is not None
    res = runner.invoke(app, ["find", "random", *tiny, "--controls", "none", "--selection", "erk",
                              "--out", str(tmp_path)])
    assert res.exit_code == 0 and "density" in res.stdout, res.output
    random_run = next(Path(tmp_path).glob("*/random-*"))
    res = runner.invoke(app, ["compare", tuned["run_dir"], str(random_run), "--out", str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.output
    assert "retrain" in res.stdout and "random" in res.stdout
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text())["rows"]


def test_grasp_reinit_flag_reaches_the_settings_and_changes_the_ticket(tmp_path):
    tiny = ["--dataset", "digits", "--width", "0.25", "--sparsity", "0.8"]
    masks = {}
    for flag in ("--grasp-reinit-linear", "--no-grasp-reinit-linear"):
        res = runner.invoke(app, ["find", "grasp", *tiny, flag, "--no-trained", "--out", str(tmp_path), "--json"])
        assert res.exit_code == 0, res.output
        rep = json.loads(res.stdout)
        assert rep["settings"]["grasp_reinit_linear"] is (flag == "--grasp-reinit-linear")
        masks[flag] = Ticket.load(Path(rep["run_dir"]) / "seed-0" / "level-1").mask
    on, off = masks["--grasp-reinit-linear"], masks["--no-grasp-reinit-linear"]
    assert on.density == off.density and any(not torch.equal(on[n], off[n]) for n in on)


def test_mpt_and_binarize_commands_print_per_layer_bits(tmp_path):
    conv = ["--model", "conv2", "--dataset", "digits", "--width", "0.25", "--batch-size", "64"]
    res = runner.invoke(app, ["find", "mpt", *conv, "--iterations", "3", "--no-baseline", "--keep", "0.2",
                              "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "BinaryConv2d" in res.stdout and "1-bit" in res.stdout
    res = runner.invoke(app, ["find", "imp", *conv, "--iterations", "3", "--rounds", "1", "--controls", "none",
                              "--out", str(tmp_path), "--json"])
    run = json.loads(res.stdout)["run_dir"]
    res = runner.invoke(app, ["binarize", run, "--level", "1", "--epochs", "0.05", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["details"]["binary"]["ternary"] and rep["settings"]["act"] == "binary"
    assert rep["metrics"]["binary_layer_bits_per_weight"] < 2.5
