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
    for seed in ctx.scope.seed_list():
        _reuse_dense(ctx, seed, spec, source)
        run_seed(ctx.dir, hp, data, spec, seed, ctx)
    return finish(ctx, "imp", hp.controls, hp.level)


def run_seed(run: Path, hp: ImpHparams, data, spec, seed: int, ctx: Context | None = None) -> None:
    """Run (or resume) every level of one seed."""
    from compress import scoring
    from compress.errors import RunDirError
    from compress.finders.common import level_dir
    from compress.finders.controls import run_controls
    from compress.io import load_tensors, save_tensors
    from compress.mask import Mask
    from compress.models import build
    from compress.pruning import layer_fractions, prune
    from compress.selection.nm import is_nm
    from compress.ticket import TICKET_FILE, Ticket

    rewind_path = run / f"seed-{seed}" / "rewind.safetensors"
    l0 = level_dir(run, seed, 0)
    hook = ctx.progress.train_hook if ctx is not None else (lambda label: None)
    if not (l0 / TICKET_FILE).is_file():
        model = build(spec, seed=seed)
        init = {k: v.clone() for k, v in model.state_dict().items()}
        total = hp.train.total_iterations(len(data.y_train))
        if hp.rewind == "iter" and hp.rewind_iter >= total:
            raise UsageError(f"rewind_iter {hp.rewind_iter} is not inside the dense run ({total} iterations).")
        snap = (hp.rewind_iter,) if hp.rewind == "iter" else ()
        r = _train(model, init, Mask.ones_like(model), data, hp, seed, snap, hook(f"seed {seed} level 0"))
        save_tensors(rewind_path, r.snapshots.get(hp.rewind_iter, init) if snap else init)
        _save(l0, spec, init, Mask.ones_like(model), model, r, hp, seed, 0, data.name)
    if not rewind_path.is_file():
        raise RunDirError(f"{rewind_path} is missing although level 0 finished; the run directory was "
                          "altered. Move the seed folder away to redo it.")
    rewind = load_tensors(rewind_path)
    # An N:M selection reaches its pattern in one round and is idempotent after it, so IMP stops at level 1.
    rounds = 1 if is_nm(hp.prune.selection) else hp.rounds
    for level in range(1, rounds + 1):
        ld = level_dir(run, seed, level)
        if not (ld / TICKET_FILE).is_file():
            prev = Ticket.load(level_dir(run, seed, level - 1))
            trained = prev.model("final")
            mask = prune(trained, prev.mask, scoring.get("magnitude")(trained),
                         layer_fractions(trained, hp.prune), hp.prune.selection, input_shape=spec.input_shape,
                         **hp.prune.options())
            start = prev.final if hp.rewind == "lr" else rewind
            model = build(spec)
            r = _train(model, start, mask, data, hp, seed, (), hook(f"seed {seed} level {level}"))
            _save(ld, spec, start, mask, model, r, hp, seed, level, data.name)
        ticket = Ticket.load(ld)
        run_controls(ld, spec, ticket.init, ticket.mask, data, hp.controls, hp.train, seed, level)


def _train(model, start, mask, data, hp: ImpHparams, seed: int, snapshot_at, on_eval):
    from compress.train import train

    model.load_state_dict(start)
    return train(model, data, hp.train, mask=mask, seed=seed, snapshot_at=snapshot_at, on_eval=on_eval)


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
    save_tensors(ctx.dir / f"seed-{seed}" / "rewind.safetensors", start.init)
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
