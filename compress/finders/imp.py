"""Iterative Magnitude Pruning with rewinding (Frankle & Carbin, ICLR 2019; Frankle et al., 2020).

Per seed: train the dense net (level 0); then for each round, prune `rate` of the remaining weights
by magnitude (layer-wise or global; output layer at half rate), rewind the survivors and retrain.
Rewind to the initialization (`init`), to iteration k of the dense run (`iter`, late rewinding), or
keep the trained weights and rewind only the learning-rate schedule (`lr`, Renda et al., 2020).
Every level is a ticket directory; finished levels are skipped on re-run.
With an N:M selection (e.g. 2:4) level 1 is the N:M ticket and IMP stops there: the pattern fixes the
density and re-selecting it is a no-op, so later rounds would only retrain the same mask.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from compress import scoring
from compress.data import Dataset
from compress.errors import RunDirError, UsageError
from compress.finders.controls import run_controls
from compress.finders.hparams import FindHparams
from compress.finders.rundir import level_dir, seed_dir
from compress.io import load_tensors, save_tensors
from compress.mask import Mask
from compress.models import ModelSpec, build
from compress.pruning import layer_fractions, prune
from compress.selection.nm import is_nm
from compress.ticket import TICKET_FILE, Ticket
from compress.train import train

log = logging.getLogger("lottery")
REWINDS = ("init", "iter", "lr")


@dataclass(frozen=True)
class ImpHparams(FindHparams):
    rounds: int = 12
    rewind: str = "init"
    rewind_iter: int = 0  # with rewind="iter": the dense run's iteration to rewind to

    def validate(self) -> None:
        if self.rounds < 1:
            raise UsageError(f"rounds must be >= 1, got {self.rounds}.")
        if self.rewind not in REWINDS:
            raise UsageError(f"rewind must be one of {', '.join(REWINDS)}, got '{self.rewind}'.")
        if self.rewind == "iter" and self.rewind_iter < 1:
            raise UsageError("rewind 'iter' needs rewind_iter >= 1 (the dense run's iteration to rewind to).")


def _train_level(spec: ModelSpec, start: dict, mask: Mask, data: Dataset, hp: ImpHparams, seed: int,
                 snapshot_at: tuple[int, ...] = ()):
    model = build(spec)
    model.load_state_dict(start)
    result = train(model, data, hp.train, mask=mask, seed=seed, snapshot_at=snapshot_at)
    return model, result


def run_seed(run: Path, hp: ImpHparams, data: Dataset, spec: ModelSpec, seed: int) -> None:
    """Run (or resume) every level of one seed."""
    sd = seed_dir(run, seed)
    rewind_path = sd / "rewind.safetensors"
    l0 = level_dir(run, seed, 0)
    if not (l0 / TICKET_FILE).is_file():
        model = build(spec, seed=seed)
        init = {k: v.clone() for k, v in model.state_dict().items()}
        mask = Mask.ones_like(model)
        if hp.rewind == "iter" and hp.rewind_iter >= hp.train.total_iterations(len(data.y_train)):
            raise UsageError(f"rewind_iter {hp.rewind_iter} is not inside the dense run "
                             f"({hp.train.total_iterations(len(data.y_train))} iterations).")
        snap = (hp.rewind_iter,) if hp.rewind == "iter" else ()
        model, r = _train_level(spec, init, mask, data, hp, seed, snap)
        save_tensors(rewind_path, r.snapshots.get(hp.rewind_iter, init) if snap else init)
        _save(l0, spec, init, mask, model, r, hp, seed, 0, data)
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
            model, r = _train_level(spec, start, mask, data, hp, seed)
            _save(ld, spec, start, mask, model, r, hp, seed, level, data)
        ticket = Ticket.load(ld)
        run_controls(ld, spec, ticket.init, ticket.mask, data, hp, seed, level)


def _save(d: Path, spec: ModelSpec, start: dict, mask: Mask, model, r, hp: ImpHparams, seed: int, level: int,
          data: Dataset) -> None:
    Ticket(spec, start, mask, model.state_dict(), meta={
        "finder": "imp", "digest": hp.digest(), "seed": seed, "level": level, "dataset": hp.data.dataset,
        "parent": f"level-{level - 1}" if level else None, "metrics": r.metrics(),
        "layer_density": mask.layer_density(),
    }).save(d)
    log.info("seed %d level %d/%d density %6.2f%%: ticket test_acc %.4f, early stop @%d (%.1f s)",
             seed, level, hp.rounds, 100 * mask.density, r.test_acc, r.early_stop_iter, r.wall_s)
