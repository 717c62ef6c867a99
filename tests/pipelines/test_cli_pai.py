import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from compress.ticket import Ticket
from pipelines.cli import app

runner = CliRunner()
TINY = ["--dataset", "digits", "--width", "0.25", "--epochs", "1", "--batch-size", "64", "--sparsity", "0.8"]


def test_find_snip_no_finetune_then_finetune_then_compare(tmp_path):
    res = runner.invoke(app, ["find", "snip", *TINY, "--no-finetune", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    run = Path(json.loads(res.stdout)["run_dir"])
    assert (run / "seed-0" / "level-1" / "ticket.json").is_file()
    res = runner.invoke(app, ["finetune", str(run), "--controls", "random", "--json"])
    assert res.exit_code == 0, res.output
    tuned = json.loads(res.stdout)
    assert [r["level"] for r in tuned["levels"]] == [0, 1] and tuned["levels"][1]["random_test_acc_mean"] is not None
    res = runner.invoke(app, ["find", "random", *TINY, "--controls", "none", "--selection", "erk",
                              "--out", str(tmp_path)])
    assert res.exit_code == 0 and "density" in res.stdout, res.output
    random_run = next(Path(tmp_path).glob("*/random-*"))
    res = runner.invoke(app, ["compare", tuned["run_dir"], str(random_run), "--out", str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.output
    assert "finetune" in res.stdout and "random" in res.stdout
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text())["rows"]


def test_bad_input_is_one_clear_paragraph_and_exit_2(tmp_path):
    cases = [
        (["find", "grasp", "--sparsity", "1.0"], "sparsity must be in [0.0, 1.0)"),
        (["find", "snip", "--selection", "4:4"], "1 <= N < M"),
        (["find", "grasp", "--score-batches", "0", *TINY], "needs data"),
        (["find", "synflow", *TINY, "--selection", "2:4"], "not a multiple of M=4"),
        (["find", "imp", "--selection", "2:1"], "1 <= N < M"),
        (["find", "random", "--nm-policy", "pad"], "nm_policy must be one of fail, dense"),
        (["finetune", str(tmp_path / "missing")], "does not exist"),
        (["compare", str(tmp_path)], "no report.json"),
    ]
    for args, msg in cases:
        if args[0] == "find":
            args = [*args, "--out", str(tmp_path)]
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert msg in " ".join(res.output.split()), (args, res.output)
        assert "Traceback" not in res.output


def test_finders_listing_includes_pai():
    res = runner.invoke(app, ["finders", "--json"])
    assert res.exit_code == 0 and {"grasp", "snip", "synflow", "random", "imp"} <= set(json.loads(res.stdout))


def test_grasp_reinit_flag_reaches_the_hparams_and_changes_the_ticket(tmp_path):
    masks = {}
    for flag in ("--grasp-reinit-linear", "--no-grasp-reinit-linear"):
        res = runner.invoke(app, ["find", "grasp", *TINY, flag, "--no-finetune", "--out", str(tmp_path), "--json"])
        assert res.exit_code == 0, res.output
        run = Path(json.loads(res.stdout)["run_dir"])
        hp = json.loads((run / "hparams.json").read_text())
        assert hp["hparams"]["grasp_reinit_linear"] is (flag == "--grasp-reinit-linear"), hp
        masks[flag] = Ticket.load(run / "seed-0" / "level-1").mask
    on, off = masks["--grasp-reinit-linear"], masks["--no-grasp-reinit-linear"]
    assert on.density == off.density and any(not torch.equal(on[n], off[n]) for n in on)
