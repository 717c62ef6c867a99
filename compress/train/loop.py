"""The training loop: in-memory batches, masked updates, validation curve, early-stopping iteration.

Masked training keeps pruned weights exactly zero, in the weights and in the optimizer state: the
invariant is established once at the start (compress.train.masking.remask) and kept by masking only the
gradients, which leaves zero weights and zero state at zero for SGD, Adam and AdamW. Callbacks
(compress.train.callbacks) hook in around the optimizer step and may change the mask; checkpoints
(compress.train.checkpoint) let a killed run resume to the same result. A NaN or infinite loss stops
training with `NonFiniteLossError` naming the iteration.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from compress.data import Dataset, batches
from compress.errors import NonFiniteLossError, RunDirError
from compress.mask import Mask
from compress.train import checkpoint as ckpt
from compress.train.callbacks import Callback, LoopState
from compress.train.hparams import TrainHparams
from compress.train.masking import mask_grads, masked_params, remask
from compress.train.optim import make_optimizer, make_scheduler

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
    callbacks: Sequence[Callback] = (),
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
) -> TrainResult:
    """Train `model` in place on `data`; with `mask`, pruned weights stay exactly zero throughout.

    `callbacks` hook in around the optimizer step (compress.train.callbacks). With `checkpoint_dir` and
    `checkpoint_every` > 0 a checkpoint is written every that many iterations, and a call that finds one
    there resumes from it to the same result as an uninterrupted run.
    """
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    opt = make_optimizer([p for p in model.parameters() if p.requires_grad], hp)
    total = hp.total_iterations(len(data.y_train))
    st = LoopState(model, opt, make_scheduler(opt, hp, total), hp, total,
                   mask=Mask(mask) if mask is not None else None, masked=masked_params(model, mask))
    snaps = set(snapshot_at)
    result = TrainResult(0.0, 0.0, 0.0, 0.0, 0, total, 0.0)
    remask(opt, st.masked)
    order, pos, best, elapsed = None, 0, float("inf"), 0.0
    fingerprint = {"hp": hp.to_dict(), "seed": seed, "total": total, "n_train": len(data.y_train)}
    found = ckpt.latest(checkpoint_dir)
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
        st.loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        if not bool(torch.isfinite(st.loss)):
            raise NonFiniteLossError(st.step + 1, total, st.loss.item(), f"{hp.optimizer}, lr {hp.lr:g}")
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


def _checkpoint(directory: str | Path, st: LoopState, gen: torch.Generator, order: torch.Tensor | None, pos: int,
                best: float, elapsed: float, result: TrainResult, callbacks: Sequence[Callback],
                fingerprint: dict) -> None:
    tensors = {f"model.{k}": v for k, v in st.model.state_dict().items()}
    tensors["gen"], tensors["rng"] = gen.get_state(), torch.get_rng_state()
    if order is not None:
        tensors["order"] = order
    for k, v in (st.mask or {}).items():
        tensors[f"mask.{k}"] = v.to(torch.uint8)
    for it, snap in result.snapshots.items():
        tensors.update({f"snap.{it}.{k}": v for k, v in snap.items()})
    info = {"fingerprint": fingerprint, "pos": pos, "best": best if math.isfinite(best) else None,
            "elapsed_s": elapsed, "has_mask": st.mask is not None,
            "optimizer": ckpt.optimizer_state(st.optimizer, tensors), "scheduler": st.scheduler.state_dict(),
            "result": {"curve": result.curve, "early_stop_iter": result.early_stop_iter,
                       "val_loss": result.val_loss, "val_acc": result.val_acc, "snapshots": sorted(result.snapshots)},
            "callbacks": [ckpt.split(f"cb{i}.", cb.state_dict(), tensors) for i, cb in enumerate(callbacks)]}
    ckpt.save(directory, st.step, tensors, info)


def _resume(found: tuple[dict, dict], st: LoopState, gen: torch.Generator, result: TrainResult,
            callbacks: Sequence[Callback], fingerprint: dict,
            directory: str | Path | None) -> tuple[torch.Tensor | None, int, float, float]:
    tensors, info = found
    if json.loads(json.dumps(fingerprint)) != info.get("fingerprint") or len(info["callbacks"]) != len(callbacks):
        raise RunDirError(f"the checkpoint in {directory} belongs to a different training (settings, seed, data "
                          "size or callbacks differ). It was left untouched; move it away or pass another "
                          "checkpoint directory.")
    with torch.no_grad():
        st.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if info["has_mask"]:
        st.mask = Mask({k[5:]: v for k, v in tensors.items() if k.startswith("mask.")})
        st.masked = masked_params(st.model, st.mask)
    ckpt.load_optimizer_state(st.optimizer, info["optimizer"], tensors)
    st.scheduler.load_state_dict(info["scheduler"])
    gen.set_state(tensors["gen"])
    torch.set_rng_state(tensors["rng"])
    st.step = info["iteration"]
    r = info["result"]
    result.curve, result.early_stop_iter = r["curve"], r["early_stop_iter"]
    result.val_loss, result.val_acc = r["val_loss"], r["val_acc"]
    for it in r["snapshots"]:
        result.snapshots[it] = {k[len(f"snap.{it}."):]: v for k, v in tensors.items() if k.startswith(f"snap.{it}.")}
    for i, cb in enumerate(callbacks):
        cb.load_state_dict(ckpt.join(f"cb{i}.", info["callbacks"][i], tensors))
    best = info["best"] if info["best"] is not None else float("inf")
    return tensors.get("order"), info["pos"], best, info["elapsed_s"]
