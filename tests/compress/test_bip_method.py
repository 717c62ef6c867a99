"""`bip` as a method: the finders' layout with controls and verdicts, exact-k tickets for every bilevel optimizer,
the dense baseline reused as the pretrained net, and the ticket taken unchanged by finetune and the ONNX export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from compress.bip.settings import BipHparams
from compress.errors import UsageError
from compress.models import build, prunable
from compress.report.levels import collect
from compress.ticket import Ticket
from pipelines import api
from pipelines.cli import app
from pipelines.runner import Pipeline

SCOPE = {"model": "lenet_300_100", "dataset": "digits", "width": 0.25, "threads": 1}
TRAIN = {"epochs": 1, "batch_size": 64, "eval_every": 5}
BIP = {"density": 0.1, "prune_epochs": 1, "batch_size": 64, "pretrain": TRAIN, "finetune": TRAIN,
       "vrbo_large_batch": 256, "vrbo_period": 3}


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    """dense -> bip (its pretraining = the dense stage's training) -> finetune -> ONNX."""
    raw = {"pipeline": {"name": "bip-chain", **SCOPE}, "stages": [
        {"kind": "dense", "train": TRAIN},
        {"kind": "bip", **BIP, "gate": {"max_density": 0.1001}},
        {"kind": "finetune", "train": TRAIN},
        {"kind": "export_onnx"},
    ]}
    rep = Pipeline(raw).run(tmp_path_factory.mktemp("bip"))
    assert rep["status"] == "passed", [(s["name"], s["status"], s.get("reason")) for s in rep["stages"]]
    root = Path(rep["run_dir"])
    return {s["name"]: {**s, "path": root / s["dir"], "art": {k: root / v for k, v in s["artifacts"].items()}}
            for s in rep["stages"]}


def test_bip_reuses_the_dense_baseline_and_keeps_exactly_k_weights(pipe):
    bip, dense = pipe["bip"], pipe["dense"]
    level0, level1 = bip["path"] / "seed-0" / "level-0", bip["path"] / "seed-0" / "level-1"
    assert (level0 / "final.safetensors").read_bytes() == (dense["art"]["model"] / "final.safetensors").read_bytes()
    ticket = Ticket.load(bip["art"]["ticket"])
    assert bip["art"]["ticket"].resolve() == level1.resolve()
    total = sum(w.numel() for w in prunable(build(ticket.spec)).values())
    assert ticket.mask.kept == round(0.1 * total) and bip["metrics"]["density"] == ticket.mask.kept / total
    for name, m in ticket.mask.items():
        assert bool((ticket.final[name][~m] == 0).all())
    info = json.loads((level1 / "ticket.json").read_text())
    assert info["meta"]["bilevel_optimizer"] == "sgd" and not any("wall" in k for k in info["meta"])
    assert bip["metrics"]["prune_wall_s"] == ticket.metrics["prune_wall_s"] > 0


def test_controls_and_verdict_as_for_imp(pipe):
    bip = pipe["bip"]
    level1 = bip["path"] / "seed-0" / "level-1"
    controls = {k: json.loads((level1 / f"control-{k}.json").read_text()) for k in ("reinit", "random")}
    assert {k: c["density"] for k, c in controls.items()} == pytest.approx(
        {"reinit": bip["metrics"]["density"], "random": bip["metrics"]["density"]})
    body = collect(bip["path"], BipHparams().controls)
    row = next(r for r in body["levels"] if r["level"] == 1)
    assert bip["metrics"]["winning"] == (row["verdict"] == "winning")
    assert bip["metrics"]["reinit_test_acc"] == controls["reinit"]["test_acc"]
    assert bip["metrics"]["dense_test_acc"] == pipe["dense"]["metrics"]["test_acc"]


def test_finetune_and_onnx_take_the_bip_ticket_unchanged(pipe):
    ft, onnx = pipe["finetune"], pipe["export_onnx"]
    bip_ticket = Ticket.load(pipe["bip"]["art"]["ticket"])
    ft_mask = Ticket.load(ft["art"]["ticket"]).mask
    assert all(bool((ft_mask[n] == m).all()) for n, m in bip_ticket.mask.items())  # finetuning keeps the mask
    assert onnx["metrics"]["parity_agreement"] == 1.0 and onnx["metrics"]["density"] == pytest.approx(0.1, abs=1e-3)


@pytest.mark.parametrize("optimizer", ["mrbo", "vrbo"])
def test_every_bilevel_optimizer_gives_an_exact_k_ticket(optimizer, tmp_path):
    rep = api.run("bip", out=tmp_path, scope=SCOPE, **BIP, bilevel_optimizer=optimizer,
                  controls={"controls": ["none"]})
    ticket = Ticket.load(api.artifact(rep, "ticket"))
    assert ticket.meta["bilevel_optimizer"] == optimizer
    assert ticket.mask.kept == round(0.1 * ticket.mask.total) and rep["metrics"]["level"] == 1


def test_settings_are_checked_and_the_command_has_help():
    with pytest.raises(UsageError, match="bilevel_optimizer"):
        BipHparams(bilevel_optimizer="adam")
    assert BipHparams(finetuned=False).ticket_train() == BipHparams().pretrain
    res = CliRunner().invoke(app, ["find", "bip", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "--bilevel-optimizer" in res.stdout and "--pretrain-epochs" in res.stdout
    res = CliRunner().invoke(app, ["find", "bip", "--bilevel-optimizer", "adam"])
    assert res.exit_code == 2 and "sgd" in res.output
