"""The training loop: in-memory batches, masked updates, validation curve, early-stopping iteration.

Masked training keeps pruned weights exactly zero: their gradients are zeroed before the step, the
weights are re-masked after it, and the optimizer's per-weight state (momentum, Adam moments) is
zeroed at pruned positions, so no update can leak through weight decay or momentum.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from compress.data import Dataset, batches
from compress.mask import Mask
from compress.models import prunable
from compress.train.hparams import TrainHparams
from compress.train.optim import make_optimizer, make_scheduler

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
    for xb, yb in batches(x, y, batch_size):
        out = model(xb)
        loss += F.cross_entropy(out, yb, reduction="sum").item()
        correct += int((out.argmax(1) == yb).sum())
    model.train(was_training)
    return loss / len(y), correct / len(y)


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
) -> TrainResult:
    """Train `model` in place on `data`; with `mask`, pruned weights stay exactly zero throughout."""
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params, hp)
    total = hp.total_iterations(len(data.y_train))
    sched = make_scheduler(opt, hp, total)
    masked = _masked_params(model, mask)
    snaps = set(snapshot_at)
    result = TrainResult(0.0, 0.0, 0.0, 0.0, 0, total, 0.0)
    best = float("inf")
    if mask is not None:
        mask.apply(model)
    if 0 in snaps:
        result.snapshots[0] = _state(model)

    step = 0
    model.train()
    while step < total:
        for xb, yb in batches(data.x_train, data.y_train, hp.batch_size, gen):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for p, m in masked:
                if p.grad is not None:
                    p.grad.mul_(m)
            opt.step()
            sched.step()
            _remask(opt, masked)
            step += 1
            if step in snaps:
                result.snapshots[step] = _state(model)
            if step % hp.eval_every == 0 or step == total:
                best = _record(model, data, step, total, result, best, on_eval)
            if step >= total:
                break

    result.test_loss, result.test_acc = evaluate(model, data.x_test, data.y_test)
    result.wall_s = time.perf_counter() - start
    return result


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


def _masked_params(model: nn.Module, mask: Mask | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    if mask is None:
        return []
    mask.check(model)
    weights = prunable(model)
    return [(weights[n], m.to(weights[n].dtype)) for n, m in mask.items() if not bool(m.all())]


@torch.no_grad()
def _remask(opt: torch.optim.Optimizer, masked: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    for p, m in masked:
        p.mul_(m)
        for value in opt.state.get(p, {}).values():
            if isinstance(value, torch.Tensor) and value.shape == p.shape:
                value.mul_(m)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return copy.deepcopy({k: v.detach().clone() for k, v in model.state_dict().items()})
