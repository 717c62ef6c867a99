"""Pruning at initialization: GraSP, SNIP, SynFlow and random scores, then one selection.

(Wang et al., ICLR 2020; Lee et al., ICLR 2019; Tanaka et al., NeurIPS 2020; Frankle et al., ICLR 2021.)
Per seed, with the IMP run-directory layout so reports, verdicts and plots are the same as IMP's:
- level-0: the dense network from the same init, trained with the same budget (the verdicts' reference);
- level-1: the ticket: the init scored and pruned to `sparsity` in one shot (SynFlow: iteratively, the
  density shrinking exponentially over `synflow_iterations` rescoring steps), trained from the init,
  with the sanity-check controls (`compress.finders.controls`).
With `finetune=False` only the untrained level-1 ticket is written (seconds); `lottery finetune RUN_DIR`
trains it later. Every layer (output included) loses `sparsity` unless excluded or given a layer rate.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from compress import scoring
from compress.data import Dataset, batches
from compress.errors import UsageError
from compress.finders import Finder, register
from compress.finders.controls import run_controls
from compress.finders.hparams import FindHparams
from compress.finders.rundir import level_dir
from compress.hparams import check_range, field
from compress.mask import Mask
from compress.models import ModelSpec, build
from compress.pruning import PruneHparams, layer_fractions, prune
from compress.selection.nm import is_nm
from compress.ticket import TICKET_FILE, Ticket
from compress.train import train

log = logging.getLogger("lottery")
METHODS = {"grasp": "GraSP: gradient-flow preserving pruning at init (Wang et al., 2020)",
           "snip": "SNIP: connection sensitivity at init (Lee et al., 2019)",
           "synflow": "SynFlow: data-free iterative synaptic flow at init (Tanaka et al., 2020)",
           "random": "Random pruning at init (the baseline PaI methods must beat)"}


@dataclass(frozen=True)
class PaiHparams(FindHparams):
    prune: PruneHparams = field(default_factory=lambda: PruneHparams(selection="global"))
    sparsity: float = 0.9             # fraction of the prunable weights removed
    score_batches: int = 1            # GraSP/SNIP: training batches scored
    score_batch_size: int = 100
    grasp_temperature: float = 200.0
    grasp_reinit_linear: bool = True  # score on Xavier-redrawn fc weights, as the official code does
    synflow_iterations: int = 100
    finetune: bool = True             # train the ticket (and the dense baseline, controls) right away

    def validate(self) -> None:
        check_range("sparsity", self.sparsity, 0.0, 1.0, hi_open=True)
        if self.score_batches < 0 or self.score_batch_size < 1:
            raise UsageError(f"score_batches must be >= 0 and score_batch_size >= 1, got {self.score_batches} "
                             f"and {self.score_batch_size}.")
        if self.synflow_iterations < 1:
            raise UsageError(f"synflow_iterations must be >= 1, got {self.synflow_iterations}.")
        if self.grasp_temperature <= 0:
            raise UsageError(f"grasp_temperature must be > 0, got {self.grasp_temperature}.")


def step_fractions(mask: Mask, fractions: dict[str, float], start: dict[str, int], k: int, iterations: int,
                   pooled: bool) -> dict[str, float]:
    """Fractions that bring step k of `iterations` to density (1 - f)^(k/iterations) of the start counts."""
    out = {n: 0.0 for n in mask}
    live = [n for n in mask if fractions.get(n, 0.0) > 0]
    if not live:
        return out
    if pooled:  # global and ERK rank the pooled layers together: one fraction of the pooled count
        f = max(fractions[n] for n in live)
        kept = sum(int(mask[n].sum()) for n in live)
        target = sum(start[n] for n in live) * (1 - f) ** (k / iterations)
        return out | {n: max(0.0, 1 - target / kept) if kept else 0.0 for n in live}
    for n in live:
        kept = int(mask[n].sum())
        out[n] = max(0.0, 1 - start[n] * (1 - fractions[n]) ** (k / iterations) / kept) if kept else 0.0
    return out


def score_and_select(model: nn.Module, mask: Mask, scorer: str, fractions: dict[str, float],
                     selection: str = "global", iterations: int = 1, allow_collapse: bool = False,
                     input_shape: tuple[int, ...] | None = None, **options: object) -> Mask:
    """Score the masked `model` with `scorer` and select; with iterations > 1 prune in small steps,
    rescoring the pruned net each time (SynFlow's schedule). Any scorer works with any selection."""
    fn = scoring.get(scorer)
    iterations = 1 if is_nm(selection) else iterations  # an N:M pattern is reached in one step
    start = {n: int(m.sum()) for n, m in mask.items()}
    current = mask
    for k in range(1, iterations + 1):
        net = current.apply(copy.deepcopy(model))
        scores = fn(net, input_shape=input_shape, **options)
        step = step_fractions(current, fractions, start, k, iterations, selection in ("global", "erk"))
        # Intermediate (denser) steps skip the guard; the final mask is what must stay connected.
        current = prune(model, current, scores, step, selection, allow_collapse=allow_collapse or k < iterations,
                        input_shape=input_shape, **options)
    return current


def score_batches(data: Dataset, hp: PaiHparams, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    it = batches(data.x_train, data.y_train, hp.score_batch_size, gen)
    return [b for _, b in zip(range(hp.score_batches), it, strict=False)]


def prune_at_init(method: str, model: nn.Module, data: Dataset, hp: PaiHparams, seed: int) -> tuple[Mask, float]:
    """The PaI ticket's mask for `model` (at init) and the seconds spent scoring and selecting."""
    t0 = time.perf_counter()
    fractions = layer_fractions(model, hp.prune.replace(output_rate_factor=1.0), rate=hp.sparsity)
    options = {**hp.prune.options(), "batches": score_batches(data, hp, seed) if method in scoring.NEEDS_DATA
               else None, "temperature": hp.grasp_temperature, "reinit_linear": hp.grasp_reinit_linear,
               "seed": seed}
    mask = score_and_select(model, Mask.ones_like(model), method, fractions, hp.prune.selection,
                            iterations=hp.synflow_iterations if method == "synflow" else 1,
                            input_shape=data.input_shape, **options)
    return mask, time.perf_counter() - t0


def run_seed(run: Path, hp: PaiHparams, data: Dataset, spec: ModelSpec, seed: int, method: str = "grasp") -> None:
    """Run (or resume) one seed: dense baseline, ticket, controls."""
    l0, l1 = level_dir(run, seed, 0), level_dir(run, seed, 1)
    if hp.finetune and not (l0 / TICKET_FILE).is_file():
        model = build(spec, seed=seed)
        init = {k: v.clone() for k, v in model.state_dict().items()}
        r = train(model, data, hp.train, mask=Mask.ones_like(model), seed=seed)
        _meta_save(l0, Ticket(spec, init, Mask.ones_like(model), model.state_dict()), method, hp, seed, 0,
                   r.metrics())
    if not (l1 / TICKET_FILE).is_file():
        model = build(spec, seed=seed)
        init = {k: v.clone() for k, v in model.state_dict().items()}
        mask, score_s = prune_at_init(method, model, data, hp, seed)
        ticket = Ticket(spec, init, mask, meta={"score_s": round(score_s, 3)})
        log.info("seed %d %s: scored and selected %.2f%% density in %.2f s", seed, method, 100 * mask.density,
                 score_s)
        metrics = None
        if hp.finetune:
            trained = ticket.model("init")
            r = train(trained, data, hp.train, mask=mask, seed=seed)
            ticket.final, metrics = trained.state_dict(), r.metrics()
        _meta_save(l1, ticket, method, hp, seed, 1, metrics)
    if hp.finetune:
        ticket = Ticket.load(l1)
        run_controls(l1, spec, ticket.init, ticket.mask, data, hp, seed, 1)


def _meta_save(d: Path, ticket: Ticket, method: str, hp: PaiHparams, seed: int, level: int,
               metrics: dict | None) -> None:
    ticket.meta.update({"finder": method, "digest": hp.digest(), "seed": seed, "level": level,
                        "dataset": hp.data.dataset, "parent": "level-0" if level else None,
                        "layer_density": ticket.mask.layer_density(), "trained": metrics is not None})
    if metrics is not None:
        ticket.meta["metrics"] = metrics
        log.info("seed %d level %d density %6.2f%%: test_acc %.4f (%.1f s)", seed, level,
                 100 * ticket.density, metrics["test_acc"], metrics["wall_s"])
    ticket.save(d)


for _name, _desc in METHODS.items():
    register(Finder(_name, PaiHparams, partial(run_seed, method=_name), _desc))
