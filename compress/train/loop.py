"""The training loop: in-memory batches, masked updates, validation curve, early-stopping iteration.

Masked training keeps pruned weights exactly zero, in the weights and in the optimizer state: the
invariant is established once at the start (compress.train.masking.remask) and kept by masking only the
gradients, which leaves zero weights and zero state at zero for SGD, Adam and AdamW. Callbacks
(compress.train.callbacks) hook in around the optimizer step and may change the mask; checkpoints
(compress.train.checkpoint) let a killed run resume to the same result. A NaN or infinite loss stops
training with `NonFiniteLossError` naming the iteration.

Data-parallel under a distributed job (compress.distributed): rank 0 hands the training to every rank, each
takes its share of the same shuffled global batch, the loss is scaled by the global batch size so that the
summed gradients are the global mean gradient, and one all-reduce per step sums gradients, loss and
BatchNorm running statistics (averaged). BatchNorm normalizes with each rank's own part of the batch, as
DDP without SyncBatchNorm does; models without it match a one-process run within float tolerance.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from compress.data import Dataset, batches
from compress.distributed import ops
from compress.errors import NonFiniteLossError
from compress.mask import Mask
from compress.train import checkpoint as ckpt
from compress.train.callbacks import Callback, LoopState
from compress.train.hparams import TrainHparams
from compress.train.masking import mask_grads, masked_params, remask
from compress.train.optim import make_optimizer, make_scheduler
from compress.train.resume import resume as _resume
from compress.train.resume import save_checkpoint as _checkpoint

# Kept importable under their historical names (tests and callers use them).
_masked_params, _remask = masked_params, remask

EvalHook = Callable[[int, int, dict[str, float]], None]


@dataclass
class TrainResult:
    test_acc: float
    test_loss: float
    val_acc: float
    val_loss: float
    early_stop_iter: int  # iteration of minimum validation loss (the LTH paper's speed measure)
    iterations: int
    wall_s: float
    curve: list[dict[str, float]] = field(default_factory=list)
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    mask: Mask | None = None  # the mask at the end (callbacks such as RigL change it during training)

    def metrics(self) -> dict[str, float]:
        return {"test_acc": self.test_acc, "test_loss": self.test_loss, "val_acc": self.val_acc,
                "val_loss": self.val_loss, "early_stop_iter": self.early_stop_iter,
                "iterations": self.iterations, "wall_s": round(self.wall_s, 3)}


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> tuple[float, float]:
    """(mean cross-entropy, top-1 accuracy) of `model` in eval mode."""
    if len(y) == 0:
        return float("nan"), float("nan")
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    n = len(y)
    if ops.world() > 1:  # a dispatched training: each rank scores its share, the sums are all-reduced
        mine = ops.share(torch.arange(n))
        x, y = x[mine], y[mine]
    for xb, yb in batches(x, y, batch_size):
        out = model(xb)
        loss += F.cross_entropy(out, yb, reduction="sum").item()
        correct += int((out.argmax(1) == yb).sum())
    model.train(was_training)
    if ops.world() > 1:
        sums = torch.tensor([loss, float(correct)], dtype=torch.float64)
        ops.all_reduce_sum_([sums], "evaluating")
        loss, correct = float(sums[0]), int(sums[1])
    return loss / n, correct / n


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Logits of `model` in eval mode over `x`."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]) if len(x) else torch.empty(0)
    model.train(was_training)
    return out


def train(
    model: nn.Module,
    data: Dataset,
    hp: TrainHparams,
    mask: Mask | None = None,
    seed: int = 0,
    snapshot_at: Iterable[int] = (),
    on_eval: EvalHook | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
) -> TrainResult:
    """Train `model` in place on `data`; with `mask`, pruned weights stay exactly zero throughout.

    `callbacks` hook in around the optimizer step (compress.train.callbacks). With `checkpoint_dir` and
    `checkpoint_every` > 0 a checkpoint is written every that many iterations, and a call that finds one
    there resumes from it to the same result as an uninterrupted run. Under a distributed job the training
    runs data-parallel on every rank (module docstring); only rank 0 calls `on_eval` and writes checkpoints.
    """
    from compress.distributed import dispatch

    if dispatch.should_dispatch():
        return dispatch.call(_train, (model, data, hp, mask, seed, tuple(snapshot_at)),
                             {"callbacks": tuple(callbacks), "checkpoint_every": checkpoint_every},
                             leader={"on_eval": on_eval, "checkpoint_dir": checkpoint_dir})
    return _train(model, data, hp, mask, seed, snapshot_at, on_eval, callbacks, checkpoint_dir, checkpoint_every)


def _train(model: nn.Module, data: Dataset, hp: TrainHparams, mask: Mask | None = None, seed: int = 0,
           snapshot_at: Iterable[int] = (), on_eval: EvalHook | None = None, callbacks: Sequence[Callback] = (),
           checkpoint_dir: str | Path | None = None, checkpoint_every: int = 0) -> TrainResult:
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params, hp)
    total = hp.total_iterations(len(data.y_train))
    st = LoopState(model, opt, make_scheduler(opt, hp, total), hp, total,
                   mask=Mask(mask) if mask is not None else None, masked=masked_params(model, mask))
    snaps = set(snapshot_at)
    result = TrainResult(0.0, 0.0, 0.0, 0.0, 0, total, 0.0)
    remask(opt, st.masked)
    order, pos, best, elapsed = None, 0, float("inf"), 0.0
    fingerprint = {"hp": hp.to_dict(), "seed": seed, "total": total, "n_train": len(data.y_train)}
    found = ops.from_leader(lambda: ckpt.latest(checkpoint_dir), "sharing the checkpoint to resume from")
    if found is not None:
        order, pos, best, elapsed = _resume(found, st, gen, result, callbacks, fingerprint, checkpoint_dir)
    elif 0 in snaps:
        result.snapshots[0] = _state(model)

    model.train()
    n = len(data.y_train)
    while st.step < total:
        if order is None or pos >= n:
            order, pos = torch.randperm(n, generator=gen), 0  # the same draws as compress.data.batches
        idx = order[pos : pos + hp.batch_size]
        pos += hp.batch_size
        if ops.world() == 1:
            st.loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        else:
            st.loss = _data_parallel_step(model, data, idx, params)
        if not bool(torch.isfinite(st.loss)):
            raise NonFiniteLossError(st.step + 1, total, st.loss.item(), f"{hp.optimizer}, lr {hp.lr:g}")
        if ops.world() == 1:
            opt.zero_grad(set_to_none=True)
            st.loss.backward()
        skip = [cb.before_step(st) for cb in callbacks]
        if not any(skip):
            mask_grads(st.masked)
            opt.step()
        st.scheduler.step()
        st.step += 1
        for cb in callbacks:
            cb.after_step(st)
        if st.step in snaps:
            result.snapshots[st.step] = _state(model)
        if st.step % hp.eval_every == 0 or st.step == total:
            best = _record(model, data, st.step, total, result, best, on_eval)
        if checkpoint_dir is not None and checkpoint_every > 0 and st.step % checkpoint_every == 0 and st.step < total:
            _checkpoint(checkpoint_dir, st, gen, order, pos, best, elapsed + time.perf_counter() - start, result,
                        callbacks, fingerprint)

    result.test_loss, result.test_acc = evaluate(model, data.x_test, data.y_test)
    result.wall_s = elapsed + time.perf_counter() - start
    result.mask = st.mask
    return result


def _data_parallel_step(model: nn.Module, data: Dataset, idx: torch.Tensor, params: list[torch.Tensor]
                        ) -> torch.Tensor:
    """This rank's share of one global batch: forward, backward, then gradients, the loss and the BatchNorm
    running statistics summed over the ranks (statistics averaged). Returns the global batch's mean loss."""
    rows = ops.share(idx)
    loss = F.cross_entropy(model(data.x_train[rows]), data.y_train[rows], reduction="sum") / len(idx)
    for p in params:
        p.grad = None
    loss.backward()
    stats = [b for b in model.buffers() if b.is_floating_point()]
    for b in stats:
        b.div_(ops.world())
    total = loss.detach().reshape(1).clone()
    ops.all_reduce_grads(params, [total, *stats])
    return total[0]


def _record(model: nn.Module, data: Dataset, step: int, total: int, result: TrainResult, best: float,
            on_eval: EvalHook | None) -> float:
    val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
    result.val_loss, result.val_acc = val_loss, val_acc
    result.curve.append({"iteration": step, "val_loss": val_loss, "val_acc": val_acc})
    if val_loss < best:
        best, result.early_stop_iter = val_loss, step
    if on_eval is not None:
        on_eval(step, total, {"val_loss": val_loss, "val_acc": val_acc})
    return best


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return copy.deepcopy({k: v.detach().clone() for k, v in model.state_dict().items()})
