"""BiP end to end (Zhang et al., NeurIPS 2022): pretrain dense -> bilevel pruning -> optional finetune.

`find_ticket` returns a `compress.ticket.Ticket` (mask with exactly k kept weights; `init` = the pruned
weights m * theta the finetune starts from; `final` = after finetuning, or = init without finetune; what was
measured, timings included, in `metrics`) and a history dict. `run_seed` writes the finders' run layout
(level-0 = the dense pretrained net, level-1 = the BiP ticket with its controls), so
`compress.finders.common.finish` gives the usual verdicts.

Controls (`train_controls`): `reinit` is the BiP mask from a fresh initialization, `random` a random mask of the
same per-layer density over the pretrained dense weights; both train with the ticket's finetune recipe. (The
random mask starts from the pretrained net, not from the ticket's m * theta, which is zero almost everywhere a
random mask would keep: that is random pruning of the pretrained net plus finetuning, the baseline BiP must beat.)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from compress.bip.search import bilevel_prune
from compress.bip.settings import BipHparams
from compress.data import Dataset
from compress.mask import Mask
from compress.models import ModelSpec, build
from compress.ticket import Ticket
from compress.train import evaluate, train

if TYPE_CHECKING:
    from compress.method import Context


def _clone(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}


def pretrain(spec: ModelSpec, data: Dataset, hp: BipHparams, seed: int) -> Ticket:
    """The dense network trained with `pretrain` from the seed's init (the same net as IMP's level 0 and the dense
    baseline with those settings), as a level-0 ticket."""
    model = build(spec, seed=seed)
    init = _clone(model.state_dict())
    r = train(model, data, hp.pretrain, mask=Mask.ones_like(model), seed=seed)
    return Ticket(spec, init, Mask.ones_like(model), _clone(model.state_dict()), meta={
        "method": "bip", "digest": hp.digest(), "seed": seed, "level": 0, "dataset": data.name, "parent": None},
        metrics=r.metrics())


def find_ticket(spec: ModelSpec, data: Dataset, hp: BipHparams, seed: int = 0,
                pretrained: dict[str, torch.Tensor] | None = None) -> tuple[Ticket, dict]:
    """BiP ticket for `spec` on `data`. With `pretrained` (a dense state dict) the pretraining is skipped
    (its time is then not in the history's wall_s)."""
    start = time.perf_counter()
    history: dict = {}
    if pretrained is None:
        dense = pretrain(spec, data, hp, seed)
        pretrained, history["pretrain"] = dense.final, dense.metrics
    model = build(spec)
    model.load_state_dict(pretrained)
    problem, opt, history["prune"] = bilevel_prune(model, data, hp, seed)
    mask = problem.to_mask(opt.x[0])
    with torch.no_grad():
        for p, value in zip(model.parameters(), opt.y, strict=True):
            p.copy_(value)
    mask.apply(model)
    init = _clone(model.state_dict())
    if hp.finetuned:
        metrics = train(model, data, hp.finetune, mask=mask, seed=seed).metrics()
    else:
        metrics = _metrics(model, data)
    history["finetune"] = {"wall_s": metrics["wall_s"]}
    history["wall_s"] = round(time.perf_counter() - start, 3)
    meta = {"method": "bip", "digest": hp.digest(), "seed": seed, "level": 1, "dataset": data.name,
            "parent": "level-0", "bilevel_optimizer": hp.bilevel_optimizer, "layer_density": mask.layer_density()}
    measured = {**metrics, "pruned_test_acc": history["prune"]["epochs"][-1]["test_acc"],
                "prune_wall_s": history["prune"]["wall_s"], "bip_wall_s": history["wall_s"],
                "prune_history": history["prune"]["epochs"]}
    return Ticket(spec, init, mask, _clone(model.state_dict()), meta=meta, metrics=measured), history


def _metrics(model: torch.nn.Module, data: Dataset) -> dict[str, float]:
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
    val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
    return {"test_acc": test_acc, "test_loss": test_loss, "val_acc": val_acc, "val_loss": val_loss,
            "early_stop_iter": 0, "iterations": 0, "wall_s": 0.0}


def train_controls(level_dir: str | Path, ticket: Ticket, dense: Ticket, data: Dataset, hp: BipHparams, seed: int,
                   level: int = 1) -> dict[str, dict]:
    """Reinit and random-mask controls of a saved BiP ticket (see the module docstring), trained like the ticket."""
    from compress.finders.controls import run_controls

    return run_controls(Path(level_dir), ticket.spec, dense.final, ticket.mask, data, hp.controls, hp.ticket_train(),
                        seed, level)


def run_seed(run: str | Path, hp: BipHparams, data: Dataset, spec: ModelSpec, seed: int,
             ctx: Context | None = None) -> Ticket:
    """Run (or resume) one seed into `run/seed-<s>/level-{0,1}` with controls; returns the BiP ticket. In a
    pipeline (`ctx`) whose dense baseline trained the same network, that baseline is level 0."""
    from compress.finders.common import baseline_dense, level_dir, save_as_level
    from compress.ticket import TICKET_FILE

    l0, l1 = level_dir(Path(run), seed, 0), level_dir(Path(run), seed, 1)
    if not (l0 / TICKET_FILE).is_file():
        base = None if ctx is None else baseline_dense(ctx, seed, hp.pretrain, spec)
        if base is not None:
            save_as_level(base, l0, {"method": "bip", "digest": hp.digest(), "level": 0, "parent": None})
            ctx.progress.message(f"BiP level 0 is the dense baseline of stage '{ctx.baseline.name}' (same "
                                 "settings): not retrained")
        else:
            pretrain(spec, data, hp, seed).save(l0)
    dense = Ticket.load(l0)
    if not (l1 / TICKET_FILE).is_file():
        ticket, _ = find_ticket(spec, data, hp, seed, pretrained=dense.final)
        ticket.save(l1)
    ticket = Ticket.load(l1)
    train_controls(l1, ticket, dense, data, hp, seed)
    return ticket


__all__ = ["find_ticket", "pretrain", "run_seed", "train_controls"]
