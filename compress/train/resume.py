"""Checkpoint and resume of the training loop (compress.train.loop): what a killed run needs to continue bit
for bit, in the folder format of compress.train.checkpoint."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from compress.errors import RunDirError
from compress.mask import Mask
from compress.train import checkpoint as ckpt
from compress.train.callbacks import Callback, LoopState
from compress.train.masking import masked_params

if TYPE_CHECKING:
    from compress.train.loop import TrainResult


def save_checkpoint(directory: str | Path, st: LoopState, gen: torch.Generator, order: torch.Tensor | None, pos: int,
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


def resume(found: tuple[dict, dict], st: LoopState, gen: torch.Generator, result: TrainResult,
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
