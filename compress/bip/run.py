"""BiP end to end (Zhang et al., NeurIPS 2022): pretrain dense -> bilevel pruning -> optional finetune.

`find_ticket` returns a `compress.ticket.Ticket` (mask with exactly k kept weights; `init` = the pruned
weights m * theta the ticket trains from; `final` = after finetuning, or = init without finetune) and a
history dict. `train_controls` trains the reinit and random-mask controls beside a saved ticket with the
ticket's own budget (`compress.finders.controls.run_controls`). `run_seed` writes the finders' run layout
(level-0 = the dense pretrained net, level-1 = the BiP ticket with its controls), so
`compress.report.levels.collect` gives the usual verdicts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from compress.bip.search import bilevel_prune
from compress.bip.settings import BipHparams
from compress.data import Dataset
from compress.mask import Mask
from compress.models import ModelSpec, build
from compress.settings import ControlHparams, TrainHparams
from compress.ticket import Ticket
from compress.train import evaluate, train


def _clone(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}


def pretrain(spec: ModelSpec, data: Dataset, hp: BipHparams, seed: int) -> tuple[dict[str, torch.Tensor], dict]:
    """Dense training from the seed's init with `train` for `pretrain_epochs` (weights, metrics)."""
    model = build(spec, seed=seed)
    if hp.pretrain_epochs <= 0:
        return _clone(model.state_dict()), _metrics(model, data)
    r = train(model, data, hp.train.replace(epochs=hp.pretrain_epochs, iterations=0), seed=seed)
    return _clone(model.state_dict()), r.metrics()


def find_ticket(spec: ModelSpec, data: Dataset, hp: BipHparams, seed: int = 0,
                pretrained: dict[str, torch.Tensor] | None = None) -> tuple[Ticket, dict]:
    """BiP ticket for `spec` on `data`. With `pretrained` (a dense state dict) the pretraining is skipped
    (its time is then not in the history's wall_s)."""
    start = time.perf_counter()
    history: dict = {}
    if pretrained is None:
        pretrained, history["pretrain"] = pretrain(spec, data, hp, seed)
    model = build(spec)
    model.load_state_dict(pretrained)
    problem, opt, history["prune"] = bilevel_prune(model, data, hp, seed)
    mask = problem.to_mask(opt.x[0])
    with torch.no_grad():
        for p, value in zip(model.parameters(), opt.y, strict=True):
            p.copy_(value)
    mask.apply(model)
    init = _clone(model.state_dict())
    if hp.finetune_epochs > 0:
        r = train(model, data, hp.ticket_train(), mask=mask, seed=seed)
        metrics = r.metrics()
    else:
        metrics = _metrics(model, data)
    history["finetune"] = {"wall_s": metrics["wall_s"]}
    history["wall_s"] = round(time.perf_counter() - start, 3)
    meta = {"finder": "bip", "digest": hp.digest(), "seed": seed, "level": 1, "dataset": data.name,
            "bilevel_optimizer": hp.bilevel_optimizer, "metrics": metrics, "layer_density": mask.layer_density(),
            "pruned_test_acc": history["prune"]["epochs"][-1]["test_acc"], "wall_s": history["wall_s"]}
    return Ticket(spec, init, mask, _clone(model.state_dict()), meta=meta), history


def _metrics(model: torch.nn.Module, data: Dataset) -> dict[str, float]:
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
    val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
    return {"test_acc": test_acc, "test_loss": test_loss, "val_acc": val_acc, "val_loss": val_loss,
            "early_stop_iter": 0, "iterations": 0, "wall_s": 0.0}


@dataclass(frozen=True)
class ControlBudget:
    """What `run_controls` reads from a finder's settings: the controls and the ticket's training recipe."""

    controls: ControlHparams
    train: TrainHparams


def train_controls(level_dir: str | Path, ticket: Ticket, data: Dataset, hp: BipHparams, seed: int,
                   level: int = 1) -> dict[str, dict]:
    """Reinit and random-mask controls of a saved BiP ticket, trained like the ticket (finetune budget)."""
    from compress.finders.controls import run_controls

    budget = ControlBudget(hp.controls, hp.ticket_train())
    return run_controls(Path(level_dir), ticket.spec, ticket.init, ticket.mask, data, budget, seed, level)


def run_seed(run: str | Path, hp: BipHparams, data: Dataset, spec: ModelSpec, seed: int) -> Ticket:
    """Run (or resume) one seed into `run/seed-<s>/level-{0,1}` with controls; returns the BiP ticket."""
    from compress.finders.rundir import level_dir

    from compress.ticket import TICKET_FILE

    l0, l1 = level_dir(Path(run), seed, 0), level_dir(Path(run), seed, 1)
    if not (l0 / TICKET_FILE).is_file():
        init = _clone(build(spec, seed=seed).state_dict())
        dense, metrics = pretrain(spec, data, hp, seed)
        full = Mask.ones_like(build(spec))
        Ticket(spec, init, full, dense, meta={"finder": "bip", "digest": hp.digest(), "seed": seed, "level": 0,
                                              "dataset": data.name, "metrics": metrics}).save(l0)
    if not (l1 / TICKET_FILE).is_file():
        dense_ticket = Ticket.load(l0)
        ticket, history = find_ticket(spec, data, hp, seed, pretrained=dense_ticket.final)
        ticket.meta["parent"] = "level-0"
        ticket.meta["prune_history"] = history["prune"]["epochs"]
        ticket.save(l1)
    ticket = Ticket.load(l1)
    train_controls(l1, ticket, data, hp, seed)
    return ticket


__all__ = ["ControlBudget", "find_ticket", "pretrain", "run_seed", "train_controls"]
