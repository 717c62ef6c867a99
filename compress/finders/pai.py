"""Pruning at initialization: `grasp`, `snip`, `synflow`, `random` (`lottery find grasp` ...), one scorer each,
then one selection. (Wang et al., ICLR 2020; Lee et al., ICLR 2019; Tanaka et al., NeurIPS 2020; Frankle et
al., ICLR 2021.)

Per seed, with the IMP run layout so verdicts and plots are the same as IMP's:
- level-0: the dense network from the same init, trained with the same budget (the verdicts' reference);
- level-1: the ticket: the init scored and pruned to `sparsity` in one shot (SynFlow: iteratively, the
  density shrinking exponentially over `synflow_iterations` rescoring steps), trained from the init, with the
  sanity-check controls. With `trained=false` only the untrained ticket is written (seconds); `lottery
  retrain` trains it later. Every layer (output included) loses `sparsity` unless excluded or given a rate.
With `from_ticket` (in a pipeline) the architecture is that of the latest earlier stage's ticket, e.g. the
smaller network a `gfs` stage found, at a fresh initialization (pruning at init of the shrunk net).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from compress.hparams import Hparams, setting
from compress.method import Context, Method, Output
from compress.settings import ControlHparams, PruneHparams, TrainHparams

log = logging.getLogger("lottery")
SCORERS = {"grasp": "GraSP: gradient-flow preserving pruning at init (Wang et al., 2020)",
           "snip": "SNIP: connection sensitivity at init (Lee et al., 2019)",
           "synflow": "SynFlow: data-free iterative synaptic flow at init (Tanaka et al., 2020)",
           "random": "Random pruning at init (the baseline pruning-at-init methods must beat)"}


@dataclass(frozen=True)
class PaiHparams(Hparams):
    sparsity: float = setting(0.9, lo=0.0, hi=1.0, hi_open=True, help="Fraction of the prunable weights removed.")
    trained: bool = setting(True, help="Train the ticket, the dense reference and the controls now (false: save "
                                       "the untrained ticket; `lottery retrain` trains it later).")
    score_batches: int = setting(1, lo=0, help="GraSP/SNIP: training batches scored.")
    score_batch_size: int = setting(100, lo=1, help="GraSP/SNIP: samples per scored batch.")
    grasp_temperature: float = setting(200.0, lo=0.0, lo_open=True, help="GraSP: softmax temperature (official "
                                                                         "code: 200).")
    grasp_reinit_linear: bool = setting(True, help="GraSP: score a copy whose fully connected weights are redrawn "
                                                   "Xavier-normal, as the official code does.")
    synflow_iterations: int = setting(100, lo=1, help="SynFlow: prune-rescore steps.")
    train: TrainHparams = setting(factory=TrainHparams, prefix="", model_defaults=True,
                                  help="Training of the ticket, dense reference and controls.")
    prune: PruneHparams = setting(factory=lambda: PruneHparams(selection="global"), prefix="",
                                  help="How scores become a mask (global top-k by default).")
    controls: ControlHparams = setting(factory=ControlHparams, prefix="", help="Sanity-check controls.")
    from_ticket: bool = setting(False, help="In a pipeline: prune at init the architecture of the latest earlier "
                                            "stage's ticket (e.g. gfs's smaller network) instead of the scope's model.")

    def validate(self) -> None:
        from compress.errors import UsageError

        if not self.prune.selection:
            raise UsageError("pruning at init needs a selection (global, layerwise, erk or an N:M pattern).")


def score_batches(data, hp: PaiHparams, seed: int) -> list:
    import torch

    from compress.data import batches

    gen = torch.Generator().manual_seed(seed)
    it = batches(data.x_train, data.y_train, hp.score_batch_size, gen)
    return [b for _, b in zip(range(hp.score_batches), it, strict=False)]


def prune_at_init(scorer: str, model, data, hp: PaiHparams, seed: int):
    """The ticket's mask for `model` (at init) and the seconds spent scoring and selecting."""
    import time

    from compress import scoring
    from compress.mask import Mask
    from compress.pruning import layer_fractions, score_and_select

    t0 = time.perf_counter()
    fractions = layer_fractions(model, hp.prune.replace(output_rate_factor=1.0), rate=hp.sparsity)
    options = {**hp.prune.options(), "batches": score_batches(data, hp, seed) if scorer in scoring.NEEDS_DATA
               else None, "temperature": hp.grasp_temperature, "reinit_linear": hp.grasp_reinit_linear,
               "seed": seed}
    mask = score_and_select(model, Mask.ones_like(model), scorer, fractions, hp.prune.selection,
                            iterations=hp.synflow_iterations if scorer == "synflow" else 1,
                            input_shape=data.input_shape, **options)
    return mask, time.perf_counter() - t0


def run_seed(run: Path, hp: PaiHparams, data, spec, seed: int, scorer: str) -> None:
    """Run (or resume) one seed: dense reference, ticket, controls."""
    from compress.finders.common import level_dir
    from compress.finders.controls import run_controls
    from compress.mask import Mask
    from compress.models import build
    from compress.ticket import TICKET_FILE, Ticket
    from compress.train import train

    l0, l1 = level_dir(run, seed, 0), level_dir(run, seed, 1)
    meta = {"method": scorer, "digest": hp.digest(), "seed": seed, "dataset": data.name}
    if hp.trained and not (l0 / TICKET_FILE).is_file():
        model = build(spec, seed=seed)
        init = {k: v.clone() for k, v in model.state_dict().items()}
        r = train(model, data, hp.train, mask=Mask.ones_like(model), seed=seed)
        Ticket(spec, init, Mask.ones_like(model), model.state_dict(), meta={**meta, "level": 0, "parent": None},
               metrics=r.metrics()).save(l0)
    if not (l1 / TICKET_FILE).is_file():
        model = build(spec, seed=seed)
        init = {k: v.clone() for k, v in model.state_dict().items()}
        mask, score_s = prune_at_init(scorer, model, data, hp, seed)
        log.info("seed %d %s: scored and selected %.2f%% density in %.2f s", seed, scorer, 100 * mask.density,
                 score_s)
        ticket = Ticket(spec, init, mask, meta={**meta, "level": 1, "parent": "level-0",
                                                "layer_density": mask.layer_density(), "trained": hp.trained})
        if hp.trained:
            trained = ticket.model("init")
            r = train(trained, data, hp.train, mask=mask, seed=seed)
            ticket.final, ticket.metrics = trained.state_dict(), r.metrics()
            log.info("seed %d level 1 density %6.2f%%: test_acc %.4f (%.1f s)", seed, 100 * ticket.density,
                     r.test_acc, r.wall_s)
        ticket.metrics["score_s"] = round(score_s, 3)
        ticket.save(l1)
    if hp.trained:
        ticket = Ticket.load(l1)
        run_controls(l1, spec, ticket.init, ticket.mask, data, hp.controls, hp.train, seed, 1)


def run(ctx: Context, scorer: str) -> Output:
    from compress.finders.common import finish, input_ticket, model_spec
    from compress.ticket import Ticket

    hp: PaiHparams = ctx.settings
    data = ctx.data()
    source = input_ticket(ctx) if hp.from_ticket else None
    spec = Ticket.load(source).spec if source is not None else model_spec(ctx, data)
    for seed in ctx.scope.seed_list():
        run_seed(ctx.dir, hp, data, spec, seed, scorer)
    if not hp.trained:
        from compress.finders.common import level_dir, ticket_output

        return ticket_output(ctx, level_dir(ctx.dir, ctx.scope.seed, 1), ("ticket",),
                             notes=["untrained ticket: `lottery retrain` trains it"])
    return finish(ctx, scorer, hp.controls, 1)


def _needs(hp: PaiHparams) -> tuple[str, ...]:
    return ("ticket",) if hp.from_ticket else ()


METHODS = [Method(
    name=name, command=("find", name), settings=PaiHparams, run=partial(run, scorer=name), summary=summary,
    doc="Scores the initialized network, selects the mask (global top-k by default), saves the ticket and trains "
        "it with the dense reference and the sanity-check controls (reinit, random mask); verdicts as for IMP. "
        "Re-running resumes.",
    produces=("ticket", "model", "predictions"), needs_from=_needs,
    metrics=("test_acc", "density", "storage_bytes", "file_bytes", "agreement", "level", "dense_test_acc",
             "winning", "reinit_test_acc", "random_test_acc"),
) for name, summary in SCORERS.items()]
