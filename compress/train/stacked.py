"""Train several networks of one architecture together, as one stacked network (compress.train.stack).

Each member keeps what makes its training its own: its start weights, its mask, its data order (its seed's
generator draws the same permutations `train` would) and its validation curve and early-stopping iteration.
They share the training settings (budget, optimizer, schedule). The summed loss gives each member its own
gradient and the elementwise optimizer its own update, so every member ends where `train` would have taken
it alone, within float tolerance (the batched matmuls sum in another order). Pruned weights and their
optimizer state stay exactly zero, as in `train` (gradient-only masking, compress.train.masking).

Data-parallel like `train`: under a distributed job every rank takes its share of each member's batch.
No callbacks and no checkpoints: the callers resume at the granularity of whole trainings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from compress.data import Dataset
from compress.distributed import ops
from compress.errors import NonFiniteLossError
from compress.mask import Mask
from compress.train.hparams import TrainHparams
from compress.train.loop import TrainResult
from compress.train.masking import mask_grads, remask
from compress.train.optim import make_optimizer, make_scheduler
from compress.train.stack import StackedNet, stack

EvalHook = Callable[[int, int, dict[str, float]], None]


@dataclass
class Member:
    """One training of a stack: the model (start weights loaded; trained in place), its mask, its data seed."""

    model: nn.Module
    mask: Mask | None = None
    seed: int = 0
    snapshot_at: tuple[int, ...] = ()


def train_stacked(members: Sequence[Member], data: Dataset, hp: TrainHparams,
                  on_eval: EvalHook | None = None) -> list[TrainResult]:
    """Train every member in place, together; their results in order (as `train` would return them).

    The members must stack (`compress.train.stack.stack`); `wall_s` of each is the wall time of the stack."""
    from compress.distributed import dispatch

    members = list(members)
    if dispatch.should_dispatch():
        return dispatch.call(_train_stacked, (members, data, hp), leader={"on_eval": on_eval})
    return _train_stacked(members, data, hp, on_eval)


def _train_stacked(members: list[Member], data: Dataset, hp: TrainHparams,
                   on_eval: EvalHook | None = None) -> list[TrainResult]:
    start = time.perf_counter()
    n_mem = len(members)
    st, why = stack([m.model for m in members])
    if st is None:
        raise ValueError(f"these models cannot be trained stacked: {why}")
    masks = [m.mask if m.mask is not None else Mask.ones_like(m.model) for m in members]
    for mask, m in zip(masks, members, strict=True):
        mask.check(m.model)
    masked = [(st.stacked_param(name), st.to_stacked(name, [mk[name].float() for mk in masks]))
              for name in masks[0] if not all(bool(mk[name].all()) for mk in masks)]
    params = [p for p in st.net.parameters() if p.requires_grad]
    opt = make_optimizer(params, hp)
    n = len(data.y_train)
    total = hp.total_iterations(n)
    scheduler = make_scheduler(opt, hp, total)
    remask(opt, masked)
    results = [TrainResult(0.0, 0.0, 0.0, 0.0, 0, total, 0.0, mask=masks[i] if members[i].mask is not None else None)
               for i in range(n_mem)]
    for i, m in enumerate(members):
        if 0 in m.snapshot_at:
            results[i].snapshots[0] = st.member(i)
    gens = [torch.Generator().manual_seed(m.seed) for m in members]
    best = [math.inf] * n_mem
    net, step, pos, orders = st.net.train(), 0, 0, None
    while step < total:
        if orders is None or pos >= n:
            orders, pos = torch.stack([torch.randperm(n, generator=g) for g in gens]), 0
        idx = orders[:, pos:pos + hp.batch_size]
        pos += hp.batch_size
        rows = torch.tensor_split(idx, ops.world(), dim=1)[ops.rank()].reshape(-1)
        out = net(data.x_train[rows])
        per = F.cross_entropy(out, data.y_train[rows], reduction="none").view(n_mem, -1).sum(1) / idx.shape[1]
        opt.zero_grad(set_to_none=True)
        per.sum().backward()
        losses = per.detach().clone()
        ops.all_reduce_grads(params, [losses])
        if not bool(torch.isfinite(losses).all()):
            bad = int((~torch.isfinite(losses)).nonzero()[0])
            raise NonFiniteLossError(step + 1, total, float(losses[bad]),
                                     f"{hp.optimizer}, lr {hp.lr:g}; stacked member {bad}")
        mask_grads(masked)
        opt.step()
        scheduler.step()
        step += 1
        for i, m in enumerate(members):
            if step in m.snapshot_at:
                results[i].snapshots[step] = st.member(i)
        if step % hp.eval_every == 0 or step == total:
            _record(st, data, step, total, results, best, on_eval)
    test_loss, test_acc = evaluate_stacked(st, data.x_test, data.y_test)
    wall = time.perf_counter() - start
    for i, m in enumerate(members):
        with torch.no_grad():
            m.model.load_state_dict(st.member(i))
        results[i].test_loss, results[i].test_acc, results[i].wall_s = float(test_loss[i]), float(test_acc[i]), wall
    return results


def _record(st: StackedNet, data: Dataset, step: int, total: int, results: list[TrainResult], best: list[float],
            on_eval: EvalHook | None) -> None:
    val_loss, val_acc = evaluate_stacked(st, data.x_val, data.y_val)
    for i, r in enumerate(results):
        r.val_loss, r.val_acc = float(val_loss[i]), float(val_acc[i])
        r.curve.append({"iteration": step, "val_loss": r.val_loss, "val_acc": r.val_acc})
        if r.val_loss < best[i]:
            best[i], r.early_stop_iter = r.val_loss, step
    if on_eval is not None:
        on_eval(step, total, {"val_loss": float(val_loss.mean()), "val_acc": float(val_acc.mean())})


@torch.no_grad()
def evaluate_stacked(st: StackedNet, x: torch.Tensor, y: torch.Tensor,
                     batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Per member (mean cross-entropy, top-1 accuracy) on (x, y), in eval mode; split over the ranks."""
    if len(y) == 0:
        nan = torch.full((st.m,), float("nan"), dtype=torch.float64)
        return nan, nan.clone()
    was = st.net.training
    st.net.eval()
    sums = torch.zeros(2, st.m, dtype=torch.float64)
    mine = ops.share(torch.arange(len(y)))
    for i in range(0, len(mine), batch_size):
        rows = mine[i:i + batch_size]
        xb, yb = x[rows], y[rows]
        out = st.net(xb.repeat(st.m, *([1] * (xb.dim() - 1)))).view(st.m, len(rows), -1)
        sums[0] += F.cross_entropy(out.reshape(-1, out.shape[-1]), yb.repeat(st.m), reduction="none").view(
            st.m, -1).sum(1).double()
        sums[1] += (out.argmax(2) == yb).sum(1).double()
    ops.all_reduce_sum_([sums], "evaluating")
    st.net.train(was)
    return sums[0] / len(y), sums[1] / len(y)
