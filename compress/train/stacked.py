"""Train several networks of one architecture together, as one stacked network (compress.train.stack).

Each member keeps what makes its training its own: its start weights, its mask, its data order (its seed's
generator draws the same permutations `train` would) and its validation curve and early-stopping iteration.
They share the training settings (budget, optimizer, schedule). The summed loss gives each member its own
gradient, and the optimizer steps each member's own slices of the stacked tensors, so every member ends bit
for bit where `train` would have taken it alone: the stacked layers compute each member with the kernels a
lone model uses (compress.train.stack), the validation and test sums are taken per member as `evaluate`
takes them, and so are the early-stopping iterations. Pruned weights and their optimizer state stay exactly
zero, as in `train` (gradient-only masking, compress.train.masking).

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
    masked = [(st.stacked_param(name), st.to_stacked([mk[name].float() for mk in masks]))
              for name in masks[0] if not all(bool(mk[name].all()) for mk in masks)]
    # The optimizer steps each member's own views of the stacked tensors, as separate tensors: an elementwise
    # kernel computes a tensor's last elements (its length modulo the vector width) on a scalar path, so
    # stepping the stacked tensors whole would round some of a member's elements differently than alone.
    params = [p for p in st.net.parameters() if p.requires_grad]
    views = [[p.detach()[i] for p in params] for i in range(n_mem)]
    opt = make_optimizer([v for member in views for v in member], hp)
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
        for p in params:
            p.grad = None
        per.sum().backward()
        losses = per.detach().clone()
        stats = [b for b in st.net.buffers() if b.is_floating_point()] if ops.world() > 1 else []
        for b in stats:  # BatchNorm running statistics: averaged over the ranks, as `train` does
            b.div_(ops.world())
        ops.all_reduce_grads(params, [losses, *stats])
        for i, member in enumerate(views):
            for p, v in zip(params, member, strict=True):
                v.grad = p.grad[i] if p.grad is not None else None
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
    """Per member (mean cross-entropy, top-1 accuracy) on (x, y) in eval mode, summed as `evaluate` sums them for
    one model (so a member's early-stopping iteration is the one it would get alone); split over the ranks."""
    n = len(y)
    if n == 0:
        nan = torch.full((st.m,), float("nan"), dtype=torch.float64)
        return nan, nan.clone()
    was = st.net.training
    st.net.eval()
    if ops.world() > 1:
        mine = ops.share(torch.arange(n))
        x, y = x[mine], y[mine]
    loss, correct = [0.0] * st.m, [0] * st.m
    for i in range(0, len(y), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        out = st.net(xb.repeat(st.m, *([1] * (xb.dim() - 1)))).view(st.m, len(yb), -1)
        for m in range(st.m):
            loss[m] += F.cross_entropy(out[m], yb, reduction="sum").item()
            correct[m] += int((out[m].argmax(1) == yb).sum())
    st.net.train(was)
    sums = torch.tensor([loss, correct], dtype=torch.float64)
    ops.all_reduce_sum_([sums], "evaluating")
    return sums[0] / n, sums[1] / n
