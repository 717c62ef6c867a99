"""`imp` (`lottery find imp`): Iterative Magnitude Pruning with rewinding (Frankle & Carbin, ICLR 2019;
Frankle et al., 2020), with sanity-check controls (Ma et al., NeurIPS 2021) at every level.

Per seed: train the dense net (level 0); then for each round prune `rate` of the remaining weights by
magnitude (layer-wise or global; output layer at a lower rate), rewind the survivors and retrain. Rewind to
the initialization (`init`), to iteration k of the dense run (`iter`, late rewinding), or keep the trained
weights and rewind only the learning-rate schedule (`lr`, Renda et al., 2020). Every level is a ticket
directory; finished levels are skipped on re-run. With an N:M selection (2:4) level 1 is the N:M ticket and
IMP stops there: the pattern fixes the density. In a pipeline whose dense baseline used the same training
settings and seed, that baseline is IMP's level 0 (not trained twice). With `from_ticket` (in a pipeline) IMP
prunes the latest earlier stage's ticket instead, e.g. the smaller network of a `gfs` stage: that ticket is
level 0 and the rewind point is its init weights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from compress.errors import UsageError
from compress.hparams import Hparams, setting
from compress.method import Context, Method, Output
from compress.settings import ControlHparams, PruneHparams, TrainHparams

log = logging.getLogger("lottery")
REWINDS = ("init", "iter", "lr")


@dataclass(frozen=True)
class ImpHparams(Hparams):
    rounds: int = setting(12, lo=1, help="Pruning rounds after the dense run.")
    rewind: str = setting("init", choices=REWINDS, help="Rewind to the init (LTH), to iteration rewind_iter of the "
                                                       "dense run (late rewinding), or only the lr schedule.")
    rewind_iter: int = setting(0, lo=0, help="With rewind=iter: the dense run's iteration to rewind to.")
    level: int = setting(-1, lo=-1, help="Level passed on to later stages; -1: the selected one (the sparsest "
                                         "winning level, else the sparsest within tolerance of dense).")
    train: TrainHparams = setting(factory=TrainHparams, prefix="", model_defaults=True,
                                  help="Training of every level and control.")
    prune: PruneHparams = setting(factory=PruneHparams, prefix="", help="What each round removes.")
    controls: ControlHparams = setting(factory=ControlHparams, prefix="", help="Sanity-check controls.")
    from_ticket: bool = setting(False, help="In a pipeline: prune the latest earlier stage's ticket (e.g. gfs's "
                                            "smaller network) instead of training the scope's model; it is level 0 "
                                            "and rewinding goes to its init weights.")

    def validate(self) -> None:
        if not self.prune.selection:
            raise UsageError("IMP needs a selection (layerwise, global, erk or an N:M pattern such as 2:4).")
        if self.from_ticket and self.rewind == "iter":
            raise UsageError("rewind 'iter' needs a snapshot of IMP's own dense run; with from_ticket, rewind to the "
                             "input ticket's init weights (init) or rewind only the lr schedule (lr).")
        if self.rewind == "iter" and self.rewind_iter < 1:
            raise UsageError("rewind 'iter' needs rewind_iter >= 1 (the dense run's iteration to rewind to).")
        if self.level > self.rounds:
            raise UsageError(f"level must be -1 (the selected level) or 0..rounds ({self.rounds}), got {self.level}.")


def run(ctx: Context) -> Output:
    from compress.finders.common import finish, input_ticket, model_spec
    from compress.ticket import Ticket

    hp: ImpHparams = ctx.settings
    data = ctx.data()
    source = input_ticket(ctx) if hp.from_ticket else None
    spec = Ticket.load(source).spec if source is not None else model_spec(ctx, data)
    ctx.progress.message(f"IMP: {hp.rounds} rounds, each trains the ticket and {len(hp.controls.controls)} "
                         "control(s)")
    seeds = ctx.scope.seed_list()
    for seed in seeds:
        _reuse_dense(ctx, seed, spec, source)
    run_seeds(ctx.dir, hp, data, spec, seeds, ctx)
    return finish(ctx, "imp", hp.controls, hp.level)


def run_seed(run: Path, hp: ImpHparams, data, spec, seed: int, ctx: Context | None = None) -> None:
    """Run (or resume) every level of one seed."""
    run_seeds(run, hp, data, spec, [seed], ctx)


def run_seeds(run: Path, hp: ImpHparams, data, spec, seeds: list[int], ctx: Context | None = None) -> None:
    """Run (or resume) every level of `seeds`, level by level: at each level the tickets of all seeds and their
    controls train together (compress.train.many: stacked where faster, `controls.stacked`). Finished tickets
    and controls are skipped; a level's ticket is saved before its controls."""
    from compress import scoring
    from compress.finders.common import level_dir
    from compress.finders.controls import pending_controls, save_control
    from compress.models import build
    from compress.pruning import layer_fractions, prune
    from compress.selection.nm import is_nm
    from compress.ticket import TICKET_FILE, Ticket
    from compress.train.many import train_many
    from compress.train.stacked import Member

    hook = ctx.progress.train_hook if ctx is not None else (lambda label: None)
    rewinds = _dense_level(run, hp, data, spec, seeds, hook)
    # An N:M selection reaches its pattern in one round and is idempotent after it, so IMP stops at level 1.
    rounds = 1 if is_nm(hp.prune.selection) else hp.rounds
    for level in range(1, rounds + 1):
        tickets, controls = [], []
        for seed in seeds:
            ld = level_dir(run, seed, level)
            if (ld / TICKET_FILE).is_file():
                ticket = Ticket.load(ld)
                start, mask = ticket.init, ticket.mask
            else:
                prev = Ticket.load(level_dir(run, seed, level - 1))
                trained = prev.model("final")
                mask = prune(trained, prev.mask, scoring.get("magnitude")(trained),
                             layer_fractions(trained, hp.prune), hp.prune.selection, input_shape=spec.input_shape,
                             **hp.prune.options())
                start = prev.final if hp.rewind == "lr" else rewinds[seed]()
                model = build(spec)
                model.load_state_dict(start)
                tickets.append((ld, seed, start, Member(model, mask, seed)))
            controls += pending_controls(ld, spec, start, mask, hp.controls, seed, level)
        members = [t[3] for t in tickets] + [c.member for c in controls]
        results = train_many(members, data, hp.train, hp.controls.stacked,
                             hook(f"level {level}: {len(members)} training(s)") if members else None)
        for (ld, seed, start, m), r in zip(tickets, results, strict=False):
            _save(ld, spec, start, m.mask, m.model, r, hp, seed, level, data.name)
        for c, r in zip(controls, results[len(tickets):], strict=True):
            save_control(c, r)


def _dense_level(run: Path, hp: ImpHparams, data, spec, seeds: list[int], hook) -> dict:
    """Train (together) the dense level 0 of every seed that lacks it; return per seed a loader of its rewind
    point."""
    from compress.errors import RunDirError
    from compress.finders.common import level_dir
    from compress.io import load_tensors, save_tensors
    from compress.mask import Mask
    from compress.models import build
    from compress.ticket import TICKET_FILE
    from compress.train.many import train_many
    from compress.train.stacked import Member

    total = hp.train.total_iterations(len(data.y_train))
    if hp.rewind == "iter" and hp.rewind_iter >= total:
        raise UsageError(f"rewind_iter {hp.rewind_iter} is not inside the dense run ({total} iterations).")
    snap = (hp.rewind_iter,) if hp.rewind == "iter" else ()
    todo = [s for s in seeds if not (level_dir(run, s, 0) / TICKET_FILE).is_file()]
    models = {s: build(spec, seed=s) for s in todo}
    inits = {s: {k: v.clone() for k, v in m.state_dict().items()} for s, m in models.items()}
    members = [Member(models[s], Mask.ones_like(models[s]), s, snap) for s in todo]
    label = f"level 0: {len(todo)} dense training(s)"
    for s, m, r in zip(todo, members, train_many(members, data, hp.train, hp.controls.stacked,
                                                  hook(label) if todo else None), strict=True):
        save_tensors(_rewind_path(run, s), r.snapshots.get(hp.rewind_iter, inits[s]) if snap else inits[s])
        _save(level_dir(run, s, 0), spec, inits[s], m.mask, m.model, r, hp, s, 0, data.name)
    for s in seeds:
        if not _rewind_path(run, s).is_file():
            raise RunDirError(f"{_rewind_path(run, s)} is missing although level 0 finished; the run directory was "
                              "altered. Move the seed folder away to redo it.")
    return {s: (lambda p=_rewind_path(run, s): load_tensors(p)) for s in seeds}


def _rewind_path(run: Path, seed: int) -> Path:
    return run / f"seed-{seed}" / "rewind.safetensors"


def _save(d: Path, spec, start: dict, mask, model, r, hp: ImpHparams, seed: int, level: int, dataset: str) -> None:
    from compress.ticket import Ticket

    Ticket(spec, start, mask, model.state_dict(), meta={
        "method": "imp", "digest": hp.digest(), "seed": seed, "level": level, "dataset": dataset,
        "parent": f"level-{level - 1}" if level else None, "layer_density": mask.layer_density(),
    }, metrics=r.metrics()).save(d)
    log.info("seed %d level %d/%d density %6.2f%%: ticket test_acc %.4f, early stop @%d (%.1f s)",
             seed, level, hp.rounds, 100 * mask.density, r.test_acc, r.early_stop_iter, r.wall_s)


def _reuse_dense(ctx: Context, seed: int, spec, source: Path | None = None) -> None:
    """Start IMP from an existing trained network instead of training one: the input ticket (`from_ticket`), or
    the pipeline's dense baseline when it is exactly IMP's level 0 (same init seed, data order, training settings
    and architecture). With `rewind = "iter"` the rewind point needs a snapshot of IMP's own dense run."""
    from compress.finders.common import baseline_dense, level_dir, save_as_level
    from compress.io import save_tensors
    from compress.ticket import TICKET_FILE, Ticket

    hp: ImpHparams = ctx.settings
    level0 = level_dir(ctx.dir, seed, 0)
    if (level0 / TICKET_FILE).is_file() or (source is None and hp.rewind == "iter"):
        return
    start = Ticket.load(source) if source is not None else None
    if start is None:
        start = baseline_dense(ctx, seed, hp.train, spec)
        if start is None:
            return
    elif start.final is None:
        raise UsageError(f"{source} is an untrained ticket; IMP prunes a trained network. Train it first "
                         "(`retrain`).")
    save_tensors(_rewind_path(ctx.dir, seed), start.init)
    meta = {"method": "imp", "digest": hp.digest(), "seed": seed, "level": 0, "parent": None,
            "layer_density": start.mask.layer_density()}
    if source is not None:
        meta.update(source_method=start.meta.get("method"), source_digest=start.meta.get("digest"))
    save_as_level(start, level0, meta)
    what = f"the ticket {source.name} of an earlier stage" if source is not None else (
        f"the dense baseline of stage '{ctx.baseline.name}' (same settings)")
    ctx.progress.message(f"IMP level 0 is {what}: not retrained")


def _needs(hp: ImpHparams) -> tuple[str, ...]:
    return ("ticket",) if hp.from_ticket else ()


METHOD = Method(
    name="imp", command=("find", "imp"), settings=ImpHparams, run=run,
    summary="Iterative Magnitude Pruning with rewinding and sanity-check controls (LTH)",
    doc="Trains the dense net, then repeatedly prunes RATE of the remaining weights by magnitude, rewinds and "
        "retrains. At every level the same mask with a new init (reinit) and a random mask of the same per-layer "
        "density (random) are trained as controls; a level is 'winning' only if it beats both. Re-running the "
        "same command resumes: finished levels are skipped.",
    produces=("ticket", "model", "predictions"), needs_from=_needs,
    metrics=("test_acc", "density", "storage_bytes", "file_bytes", "agreement", "level", "dense_test_acc",
             "winning", "reinit_test_acc", "random_test_acc"),
)
