"""BiP's pruning phase: scores from |pretrained w|, then bilevel steps with `sgd`, `mrbo` or `vrbo`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn

from compress.bilevel.base import BilevelOptimizer
from compress.bilevel.mrbo import MRBO, MrboSettings
from compress.bilevel.vrbo import VRBO, VrboSettings
from compress.bip.problem import BipOracle, BipProblem
from compress.bip.settings import BipHparams
from compress.data import Dataset
from compress.errors import UsageError

StepHook = Callable[[BilevelOptimizer, BipProblem], None]


def kept_count(total: int, density: float) -> int:
    """k = round(density * total), at least one weight."""
    k = max(1, round(density * total))
    if k >= total:
        raise UsageError(f"density {density} keeps all {total} prunable weights; choose a density below "
                         f"{(total - 0.5) / total:.6f}.")
    return k


def make_optimizer(problem: BipProblem, hp: BipHparams, steps: int, seed: int) -> BilevelOptimizer:
    """The bilevel optimizer named by `hp.bilevel_optimizer`, started at scores = |w|, weights = w."""
    from compress.bip.sgd import BipSGD

    y = problem.params()
    x = [problem.weight_vector(y).abs()]
    oracle = BipOracle(hp.implicit_scale)
    if hp.bilevel_optimizer == "sgd":
        return BipSGD(problem, x, y, oracle, hp.lower_lr, hp.upper_lr, hp.momentum, hp.batch_size, steps, seed)
    if hp.bilevel_optimizer == "mrbo":
        s = MrboSettings(lower_lr=hp.lower_lr, upper_lr=hp.upper_lr, batch_size=hp.batch_size,
                         upper_batch_size=hp.batch_size, m=hp.mrbo_m, c1=hp.mrbo_c, c2=hp.mrbo_c, shared_batch=True)
        return MRBO(problem, x, y, s, oracle, seed)
    s = VrboSettings(lower_lr=hp.lower_lr, upper_lr=hp.upper_lr, period=hp.vrbo_period,
                     inner_steps=hp.vrbo_inner_steps, large_batch=hp.vrbo_large_batch, small_batch=hp.batch_size,
                     shared_batch=True)
    return VRBO(problem, x, y, s, oracle, seed)


def outer_steps(hp: BipHparams, n_train: int) -> int:
    """Outer iterations for `prune_epochs` worth of samples (VRBO's draw T + 1 batches per iteration)."""
    batches = max(1, math.ceil(hp.prune_epochs * n_train / hp.batch_size))
    return max(1, batches // (hp.vrbo_inner_steps + 1)) if hp.bilevel_optimizer == "vrbo" else batches


def bilevel_prune(model: nn.Module, data: Dataset, hp: BipHparams, seed: int = 0,
                  on_step: StepHook | None = None) -> tuple[BipProblem, BilevelOptimizer, dict]:
    """Run the pruning phase on `model` (pretrained); return the problem, the optimizer (final scores in
    `opt.x[0]`, weights in `opt.y`) and a history (per epoch: mask changes, test accuracy of m * theta)."""
    problem = BipProblem(model, data, kept_count(sum(w.numel() for w in _prunable(model)), hp.density), hp.gamma)
    steps = outer_steps(hp, len(data.y_train))
    opt = make_optimizer(problem, hp, steps, seed)
    per_epoch = max(1, steps // max(1, math.ceil(hp.prune_epochs)))
    history: dict = {"steps": steps, "k": problem.k, "total": problem.total, "epochs": []}
    previous = problem.mask(opt.x[0]).clone()
    start, paused = time.perf_counter(), 0.0
    for step in range(1, steps + 1):
        opt.step()
        if on_step is not None:
            on_step(opt, problem)
        if step % per_epoch == 0 or step == steps:
            t = time.perf_counter()
            current = problem.mask(opt.x[0]).clone()
            acc = _accuracy(problem, opt)
            history["epochs"].append({"step": step, "samples": opt.samples, "mask_changed": int(
                (current != previous).sum()), "test_acc": acc, "wall_s": round(t - start - paused, 3)})
            previous = current
            paused += time.perf_counter() - t
    history["wall_s"] = round(time.perf_counter() - start - paused, 3)
    return problem, opt, history


def _prunable(model: nn.Module) -> list[torch.Tensor]:
    from compress.models import prunable

    return list(prunable(model).values())


@torch.no_grad()
def _accuracy(problem: BipProblem, opt: BilevelOptimizer) -> float:
    was = problem.model.training
    problem.model.eval()
    logits = problem.logits([opt.x[0].detach()], [t.detach() for t in opt.y], problem.data.x_test)
    problem.model.train(was)
    return float((logits.argmax(1) == problem.data.y_test).float().mean())


__all__ = ["bilevel_prune", "kept_count", "make_optimizer", "outer_steps"]
