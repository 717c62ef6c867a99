"""`lottery find rigl|set|static` on the method design: layout, report details, reference, checkpoints."""

from pathlib import Path

import jsonschema
import pytest
import torch

from compress.ticket import Ticket
from pipelines import api
from pipelines.report import schema

TINY = {"scope": {"dataset": "digits", "width": 0.25}, "train": {"epochs": 2, "batch_size": 64, "eval_every": 10},
        "delta_t": 5, "checkpoint_every": 10}


@pytest.mark.parametrize("rule", ["rigl", "set", "static"])
def test_rules_write_a_ticket_with_history_and_a_reference(tmp_path, rule):
    rep = api.run(rule, out=tmp_path, **TINY)
    jsonschema.validate(rep, schema())
    run = Path(rep["run_dir"])
    ticket, dense = Ticket.load(run / "seed-0" / "level-1"), Ticket.load(run / "seed-0" / "level-0")
    assert ticket.meta["method"] == rule and rep["settings"]["method"] == rule
    assert ticket.density == pytest.approx(0.1, abs=2e-3) and dense.density == 1.0
    assert all(torch.equal(ticket.init[k], dense.init[k]) for k in dense.init)  # the same init, one sparse
    assert all(torch.count_nonzero(ticket.final[n][~m]) == 0 for n, m in ticket.mask.items())
    assert rep["metrics"]["dense_test_acc"] == dense.metrics["test_acc"]
    assert 0 < rep["metrics"]["train_flops_ratio"] < 1 and rep["metrics"]["inference_flops_ratio"] < 0.2
    updates = rep["details"]["updates"]
    if rule == "static":
        assert updates == []
    else:
        assert updates and all(sum(u["grown"].values()) == sum(u["dropped"].values()) for u in updates)
        assert (run / "mask_change.png").is_file()
    assert not list(run.rglob("checkpoints-*"))  # the finished ticket does not keep its checkpoints


def test_no_method_flag_for_a_command_whose_rule_is_fixed():
    from pipelines import registry
    from pipelines.cli.commands import method_flags

    _, flags = method_flags(registry.get("set"))
    assert "method" not in {f.dotted for f in flags} and "delta_t" in {f.dotted for f in flags}
    assert registry.get("set").settings().method == "set"
