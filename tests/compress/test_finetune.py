from pathlib import Path

import pytest
import torch

from compress import finders, finetune
from compress.errors import RunDirError
from compress.sparsity import nm
from compress.ticket import Ticket

CONV = {"model.model": "conv2", "model.width": 0.25, "data.dataset": "digits", "train.epochs": 1,
        "train.batch_size": 64, "train.eval_every": 5, "controls.controls": ["random"]}


def test_imp_with_2_4_stops_at_level_1_and_oneshot_2_4_retrains(tmp_path):
    hp = finders.make_hparams("imp", {**CONV, "rounds": 4, "prune.selection": "2:4", "prune.nm_policy": "dense"})
    report = finders.find("imp", hp, [0], tmp_path)
    run = Path(report["run_dir"])
    assert [r["level"] for r in report["levels"]] == [0, 1] and not (run / "seed-0" / "level-2").exists()
    t1 = Ticket.load(run / "seed-0" / "level-1")
    for name in t1.mask:
        if name != "0.weight":  # the 1-channel first conv has no 4-groups: left dense by policy
            assert nm.check(t1.final[name], 2, 4, name).compliant
    # One-shot 2:4 from the trained dense level 0, retrained from the trained weights (ASP).
    fhp = finetune.make_hparams(run, selection="2:4", settings={"prune.nm_policy": "dense"})
    done = finetune.finetune(fhp, tmp_path / "ft")
    src = Ticket.load(run / "seed-0" / "level-0")
    dense, ticket = (Ticket.load(Path(done["run_dir"]) / "seed-0" / f"level-{i}") for i in (0, 1))
    assert done["dense_test_acc"] == pytest.approx(src.meta["metrics"]["test_acc"])
    assert dense.density == 1.0 and all(torch.equal(ticket.init[k], src.final[k]) for k in src.final)
    for name in ticket.mask:
        if name != "0.weight":
            assert nm.check(ticket.final[name], 2, 4, name).compliant
    assert done["levels"][1]["random_test_acc_mean"] is not None and done["finder"] == "finetune"


def test_finetune_refuses_missing_and_untrained_sources(tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        finetune.make_hparams(tmp_path / "nope")
    hp = finders.make_hparams("random", {**CONV, "finetune": False})
    run = Path(finders.find("random", hp, [0], tmp_path)["run_dir"])
    with pytest.raises(RunDirError, match="no finished level 0"):
        finetune.finetune(finetune.make_hparams(run, selection="2:4"))
    with pytest.raises(Exception, match="needs a trained model"):
        finetune.finetune(finetune.make_hparams(run / "seed-0" / "level-1", selection="2:4"))
