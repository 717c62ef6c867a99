from pathlib import Path

import pytest
import torch
from torch import nn

from compress import models
from compress.errors import UsageError
from compress.finders.pai import PaiHparams, prune_at_init
from compress.ticket import Ticket
from pipelines import api

TINY = {"scope": {"width": 0.25, "dataset": "digits"}, "train": {"epochs": 1, "batch_size": 64, "eval_every": 5},
        "sparsity": 0.8, "synflow_iterations": 5}


@pytest.mark.parametrize("method", ["grasp", "synflow"])
def test_pai_run_layout_density_and_verdicts(tmp_path, method):
    report = api.run(method, out=tmp_path, **TINY)
    run = Path(report["run_dir"])
    dense, ticket = (Ticket.load(run / "seed-0" / f"level-{i}") for i in (0, 1))
    assert dense.density == 1.0 and abs(ticket.density - 0.2) < 1e-4
    assert ticket.meta["method"] == method and ticket.metrics["score_s"] >= 0
    # Trained from the init it was scored at; pruned weights stayed zero; same init as the dense baseline.
    assert all(torch.equal(ticket.init[k], dense.init[k]) for k in dense.init)
    for name, m in ticket.mask.items():
        assert torch.count_nonzero(ticket.final[name][~m]) == 0
    levels = report["details"]["levels"]
    assert [r["level"] for r in levels] == [0, 1]
    assert levels[1]["verdict"] in ("winning", "matches-dense", "below-dense")
    assert levels[1]["reinit_test_acc_mean"] is not None and levels[1]["random_test_acc_mean"] is not None
    assert (run / "accuracy_vs_density.png").is_file()


def test_untrained_ticket_then_retrain_trains_it(tmp_path):
    report = api.run("snip", out=tmp_path, **{**TINY, "trained": False, "controls": {"controls": []}})
    run = Path(report["run_dir"])
    assert not (run / "seed-0" / "level-0").exists()
    ticket = Ticket.load(run / "seed-0" / "level-1")
    assert ticket.final is None and abs(ticket.density - 0.2) < 1e-4
    done = api.run("retrain", input=run / "seed-0" / "level-1", train={"epochs": 1, "batch_size": 64},
                   controls={"controls": []})
    assert [r["level"] for r in done["details"]["levels"]] == [0, 1]
    trained = Ticket.load(api.artifact(done, "ticket"))
    assert all(torch.equal(trained.mask[k], ticket.mask[k]) for k in ticket.mask)
    assert all(torch.equal(trained.init[k], ticket.init[k]) for k in ticket.init)


@pytest.mark.parametrize("selection", ["layerwise", "erk", "2:4"])
def test_every_selection_works_with_pai(selection, digits):
    model = models.build(models.ModelSpec("conv2", (1, 8, 8), 10, 0.25), seed=0)
    hp = PaiHparams(sparsity=0.7).updated({"prune.selection": selection, "prune.nm_policy": "dense"})
    mask, _ = prune_at_init("snip", model, digits, hp, 0)
    if selection == "layerwise":
        assert all(abs(d - 0.3) < 2e-3 for d in mask.layer_density().values())
    elif selection == "erk":
        assert abs(mask.density - 0.3) < 1e-3
    else:
        assert all(abs(d - 0.5) < 1e-6 for k, d in mask.layer_density().items() if k != "0.weight")


def test_bad_input(digits, tmp_path):
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(UsageError, match=r"sparsity must be in \[0.0, 1.0\)"):
            api.run("grasp", out=tmp_path, sparsity=bad)
    model = models.build(models.ModelSpec("conv2", (1, 8, 8), 10, 0.25), seed=0)
    for method in ("grasp", "snip"):
        with pytest.raises(UsageError, match="needs data"):
            prune_at_init(method, model, digits, PaiHparams(score_batches=0), 0)
    prune_at_init("synflow", model, digits, PaiHparams(score_batches=0, synflow_iterations=2), 0)  # data-free
    with pytest.raises(UsageError, match="no conv or linear layer"):
        prune_at_init("random", nn.Sequential(nn.Flatten(), nn.ReLU()), digits, PaiHparams(), 0)
    assert PaiHparams(sparsity=0.0).sparsity == 0.0
