from pathlib import Path

import pytest
import torch

from compress.errors import RunDirError, UsageError
from compress.sparsity import nm
from compress.ticket import Ticket
from pipelines import api

CONV = {"scope": {"model": "conv2", "width": 0.25, "dataset": "digits"},
        "train": {"epochs": 1, "batch_size": 64, "eval_every": 5}, "controls": {"controls": ["random"]}}


def test_imp_with_2_4_stops_at_level_1_and_oneshot_2_4_retrains(tmp_path):
    report = api.run("imp", out=tmp_path, **{**CONV, "rounds": 4, "prune": {"selection": "2:4", "nm_policy": "dense"}})
    run = Path(report["run_dir"])
    assert [r["level"] for r in report["details"]["levels"]] == [0, 1] and not (run / "seed-0" / "level-2").exists()
    t1 = Ticket.load(run / "seed-0" / "level-1")
    for name in t1.mask:
        if name != "0.weight":  # the 1-channel first conv has no 4-groups: left dense by policy
            assert nm.check(t1.final[name], 2, 4, name).compliant
    # One-shot 2:4 from the trained dense level 0, retrained from the trained weights (ASP).
    done = api.run("finetune", input=run, level=0, out=tmp_path / "ft",
                   prune={"selection": "2:4", "nm_policy": "dense"}, controls={"controls": ["random"]})
    src = Ticket.load(run / "seed-0" / "level-0")
    ticket = Ticket.load(api.artifact(done, "ticket"))
    assert done["metrics"]["source_test_acc"] == pytest.approx(src.metrics["test_acc"])
    assert all(torch.equal(ticket.init[k], src.final[k]) for k in src.final)
    for name in ticket.mask:
        if name != "0.weight":
            assert nm.check(ticket.final[name], 2, 4, name).compliant
    assert done["metrics"]["random_test_acc"] is not None and done["method"] == "finetune"
    assert 0.49 < ticket.density < 0.6


def test_finetune_continues_under_the_mask(tmp_path, tiny_imp):
    run = Path(api.run("imp", out=tmp_path, **{**tiny_imp, "rounds": 1})["run_dir"])
    src = Ticket.load(run / "seed-0" / "level-1")
    done = api.run("finetune", input=run, level=1, train={"epochs": 1, "batch_size": 64})
    ticket = Ticket.load(api.artifact(done, "ticket"))
    assert all(torch.equal(ticket.mask[k], src.mask[k]) for k in src.mask)
    assert all(torch.equal(ticket.init[k], src.final[k]) for k in src.final)  # it started from the trained weights
    assert all(torch.count_nonzero(ticket.final[k][~m]) == 0 for k, m in ticket.mask.items())


def test_finetune_refuses_missing_and_untrained_sources(tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        api.run("finetune", input=tmp_path / "nope")
    report = api.run("random", out=tmp_path, **{**CONV, "trained": False})
    run = Path(report["run_dir"])
    with pytest.raises(RunDirError, match="level 0 is not finished"):
        api.run("finetune", input=run, level=0)
    with pytest.raises(UsageError, match="untrained ticket"):
        api.run("finetune", input=run / "seed-0" / "level-1", prune={"selection": "2:4"})
