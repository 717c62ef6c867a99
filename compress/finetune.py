"""`finetune(source)`: train an untrained ticket, or prune a trained model one-shot and retrain it.

- Without `selection`: the source tickets (e.g. a pruning-at-init run made with finetune off, or any
  ticket directory) are trained from their start weights; level-0 is the dense net from the same
  start weights trained with the same budget.
- With `selection` (e.g. "2:4"): the source's trained weights (by default its dense level-0) are
  pruned one-shot by magnitude and retrained from the trained weights with the original schedule
  (NVIDIA ASP's recipe, Mishra et al., 2021); level-0 is the trained source itself.
The result is a new run directory `<out>/<model>-<dataset>/finetune-<digest>/seed-<s>/level-{0,1}` with
the sanity-check controls at level 1 and the same report.json/table/plot as the finders.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compress import scoring
from compress.data import Dataset
from compress.errors import RunDirError, UsageError
from compress.finders import load_data, write_report
from compress.finders.controls import run_controls
from compress.finders.hparams import FindHparams
from compress.finders.rundir import level_dir, run_dir
from compress.hparams import check_range
from compress.io import load_json
from compress.mask import Mask
from compress.models import build
from compress.pruning import layer_fractions, prune
from compress.ticket import TICKET_FILE, Ticket, _index, finished_levels, resolve
from compress.train import evaluate, train

log = logging.getLogger("lottery")


@dataclass(frozen=True)
class FinetuneHparams(FindHparams):
    source: str = ""       # the source run or ticket directory (resolved path)
    source_level: int = -1  # -1: level 0 (dense, trained) when pruning, the last finished level otherwise
    selection: str = ""    # "" = train the source tickets as they are; else prune one-shot with it and retrain
    sparsity: float = 0.5  # fraction removed by a non-N:M selection

    def validate(self) -> None:
        check_range("sparsity", self.sparsity, 0.0, 1.0, hi_open=True)


def _source_run(path: Path) -> Path | None:
    for p in (path, path.parent, path.parent.parent):
        if (p / "hparams.json").is_file():
            return p
    return None


def source_tickets(source: Path, level: int, pruning: bool) -> dict[int, Path]:
    """seed -> the source ticket directory to finetune."""
    if (source / TICKET_FILE).is_file():
        return {int(load_json(source / TICKET_FILE).get("meta", {}).get("seed", 0)): source}
    seeds = sorted((s for s in source.glob("seed-*") if s.is_dir()), key=lambda s: _index(s, "seed"))
    if not seeds:
        resolve(source)  # raises the usual "holds no finished ticket" error
    out = {}
    for sd in seeds:
        levels = finished_levels(sd)
        want = level if level >= 0 else (0 if pruning else (levels[-1] if levels else -1))
        if want not in levels:
            raise RunDirError(f"{sd} has no finished level {want} to finetune; finished levels: "
                              f"{', '.join(map(str, levels)) or 'none'}. Pick one with --level.")
        out[_index(sd, "seed")] = sd / f"level-{want}"
    return out


def make_hparams(source: str | Path, selection: str = "", sparsity: float = 0.5, level: int = -1,
                 settings: dict[str, Any] | None = None) -> FinetuneHparams:
    """The source run's model/data/training/controls settings, then `settings` (dotted) on top."""
    src = Path(source).resolve()
    if not src.exists():
        raise RunDirError(f"{src} does not exist; give a run directory or a ticket directory (seed-*/level-*).")
    base: dict[str, Any] = {}
    run = _source_run(src)
    if run is not None:
        old = load_json(run / "hparams.json").get("hparams", {})
        base = {k: old[k] for k in ("model", "data", "train", "controls") if k in old}
    hp = FinetuneHparams.from_dict(base).replace(source=str(src), selection=selection, sparsity=sparsity,
                                                 source_level=level)
    for dotted, value in (settings or {}).items():
        hp = hp.with_setting(dotted, value)
    return hp


def finetune(hp: FinetuneHparams, out: str | Path | None = None) -> dict[str, Any]:
    """Run (or resume) the finetune run for every seed of the source; write and return its report."""
    start = time.perf_counter()
    src = Path(hp.source)
    pruning = bool(hp.selection)
    tickets = source_tickets(src, hp.source_level, pruning)
    first = Ticket.load(next(iter(tickets.values())))
    hp = hp.replace(model=hp.model.replace(model=first.spec.name, width=first.spec.width, init=first.spec.init),
                    data=hp.data.replace(dataset=first.meta.get("dataset", hp.data.dataset)))
    data = load_data(hp)
    run_root = _source_run(src)
    root = Path(out) if out is not None else (run_root.parent.parent if run_root else Path("runs"))
    run = run_dir(root, "finetune", hp)
    for seed, path in tickets.items():
        run_seed(run, hp, data, Ticket.load(path), seed)
    return write_report(run, "finetune", hp, sorted(tickets), time.perf_counter() - start)


def run_seed(run: Path, hp: FinetuneHparams, data: Dataset, src: Ticket, seed: int) -> None:
    spec = src.spec
    l0, l1 = level_dir(run, seed, 0), level_dir(run, seed, 1)
    if hp.selection and src.final is None:
        raise UsageError(f"pruning with --selection {hp.selection} needs a trained model, but the source ticket of "
                         f"seed {seed} is untrained. Train it first (lottery finetune without --selection).")
    start = src.final if hp.selection else src.init
    if not (l0 / TICKET_FILE).is_file():
        if hp.selection:  # the trained source is the dense reference
            model = src.model("final")
            loss, acc = evaluate(model, data.x_test, data.y_test)
            metrics = {**src.meta.get("metrics", {}), "test_acc": acc, "test_loss": loss}
            metrics.setdefault("early_stop_iter", 0)
            metrics.setdefault("wall_s", 0.0)
            _save(l0, Ticket(spec, src.final, src.mask, src.final), hp, seed, 0, metrics)
        else:
            model = build(spec)
            model.load_state_dict(start)
            full = Mask.ones_like(model)
            r = train(model, data, hp.train, mask=full, seed=seed)
            _save(l0, Ticket(spec, start, full, model.state_dict()), hp, seed, 0, r.metrics())
    if not (l1 / TICKET_FILE).is_file():
        mask = src.mask
        if hp.selection:
            trained = src.model("final")
            fractions = layer_fractions(trained, hp.prune.replace(output_rate_factor=1.0), rate=hp.sparsity)
            mask = prune(trained, src.mask, scoring.get("magnitude")(trained), fractions, hp.selection,
                         input_shape=spec.input_shape, **hp.prune.options())
        model = build(spec)
        model.load_state_dict(start)
        r = train(model, data, hp.train, mask=mask, seed=seed)
        _save(l1, Ticket(spec, start, mask, model.state_dict()), hp, seed, 1, r.metrics())
    ticket = Ticket.load(l1)
    run_controls(l1, spec, ticket.init, ticket.mask, data, hp, seed, 1)


def _save(d: Path, ticket: Ticket, hp: FinetuneHparams, seed: int, level: int, metrics: dict) -> None:
    ticket.meta = {"finder": "finetune", "digest": hp.digest(), "seed": seed, "level": level,
                   "dataset": hp.data.dataset, "source": hp.source, "selection": hp.selection,
                   "parent": "level-0" if level else None, "metrics": metrics,
                   "layer_density": ticket.mask.layer_density()}
    ticket.save(d)
    log.info("finetune seed %d level %d density %6.2f%%: test_acc %.4f", seed, level, 100 * ticket.density,
             metrics["test_acc"])
