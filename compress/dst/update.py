"""The mask update shared by RigL and SET: drop the smallest-magnitude active weights, grow as many new ones.

At an update iteration t (compress.dst.schedule), in every sparse layer, k = floor(f(t) * active) active
weights with the smallest |w| are dropped and the k inactive connections with the highest grow scores
(RigL: |dense gradient|; SET: random) are grown. As in the paper (Algorithm 1) and the reference code, the
grow candidates are all connections outside the kept set, so a just-dropped weight may come back (it then
keeps its value); newly grown weights start at 0 with zeroed optimizer state, the per-layer count never
changes, and the update replaces that iteration's optimizer step. Layers that are fully dense are left alone.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import numpy as np
import torch

from compress.dst.schedule import drop_fraction, is_update
from compress.errors import RunDirError
from compress.mask import Mask
from compress.models import prunable
from compress.train.callbacks import Callback, LoopState


class DynamicMask(Callback):
    """Callback that drops and grows connections on RigL's schedule and records what it did."""

    def __init__(self, rule: ModuleType, delta_t: int, alpha: float, t_end_iter: int, seed: int,
                 identity: dict[str, Any] | None = None) -> None:
        self.rule, self.delta_t, self.alpha, self.t_end_iter = rule, delta_t, alpha, t_end_iter
        self.generator = torch.Generator().manual_seed(seed)
        # What a checkpoint must match to be resumed by this run (the rule's settings, the sparsity...).
        self.identity = json.loads(json.dumps({"rule": rule.__name__, "delta_t": delta_t, "alpha": alpha,
                                               "t_end_iter": t_end_iter, "seed": seed, **(identity or {})}))
        self.history: list[dict[str, Any]] = []
        self.packed: list[torch.Tensor] = []  # the mask after each update, bit-packed (for the mask-change curve)

    def before_step(self, state: LoopState) -> bool:
        t = state.step + 1
        if self.rule.grow_scores is None or state.mask is None or not is_update(t, self.delta_t, self.t_end_iter):
            return False
        f = drop_fraction(t, self.alpha, self.t_end_iter)
        weights = prunable(state.model)
        new, drop = {}, {}
        for name, active in state.mask.items():
            n_active = int(active.sum())
            drop[name] = k = int(f * n_active) if n_active < active.numel() else 0
            if k == 0:
                new[name] = active
                continue
            w = weights[name].detach()
            kept = active & ~select(w.abs(), active, k, largest=False)
            scores = self.rule.grow_scores(w, weights[name].grad, self.generator)
            new[name] = kept | select(scores, ~kept, k, largest=True)
        counts = state.set_mask(Mask(new))
        self.history.append({
            "iteration": t, "drop_fraction": f, "drop_count": drop,
            "layer_density": {n: int(m.sum()) / m.numel() for n, m in state.mask.items()},
            "dropped": {n: c[0] for n, c in counts.items()}, "grown": {n: c[1] for n, c in counts.items()},
        })
        self.packed.append(pack(state.mask))
        return any(d or g for d, g in counts.values())

    def state_dict(self) -> dict[str, Any]:
        return {"identity": self.identity, "generator": self.generator.get_state(), "history": self.history,
                **{f"packed.{i}": p for i, p in enumerate(self.packed)}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("identity") != self.identity:
            raise RunDirError(f"the checkpoint was written by another sparse training ({state.get('identity')}); "
                              f"this one is {self.identity}. It was left untouched; move it away or pass another "
                              "checkpoint directory.")
        self.generator.set_state(state["generator"])
        self.history = list(state["history"])
        self.packed = [state[f"packed.{i}"] for i in range(len(self.history))]


def select(scores: torch.Tensor, among: torch.Tensor, k: int, largest: bool) -> torch.Tensor:
    """Bool mask of the `k` highest (or lowest) scores among the True positions of `among`.

    `torch.topk` rather than a full sort: an update touches every weight, and a sort of the largest layer
    at each update would cost RigL a noticeable share of its training time on this CPU."""
    idx = among.flatten().nonzero().squeeze(1)
    out = torch.zeros(among.numel(), dtype=torch.bool)
    if k > 0:
        out[idx[torch.topk(scores.flatten()[idx], k, largest=largest, sorted=False).indices]] = True
    return out.reshape(among.shape)


def pack(mask: Mask) -> torch.Tensor:
    """All layers of `mask`, flattened in order, as packed bits (uint8)."""
    flat = torch.cat([m.flatten() for m in mask.values()]).numpy()
    return torch.from_numpy(np.packbits(flat))


def mask_change_curve(initial: Mask, packed: list[torch.Tensor], final: Mask, layers: list[str]) -> list[float]:
    """Fraction of the final mask's connections (over `layers`) present at the start and after each update."""
    sizes = [m.numel() for m in final.values()]
    select = torch.cat([torch.full((s,), n in layers) for n, s in zip(final, sizes, strict=True)])
    end = torch.cat([m.flatten() for m in final.values()]) & select
    total = max(1, int(end.sum()))
    states = [torch.cat([m.flatten() for m in initial.values()])]
    states += [torch.from_numpy(np.unpackbits(p.numpy(), count=len(select)).astype(bool)) for p in packed]
    return [int((s & end).sum()) / total for s in states]
