"""Training and inference FLOPs of sparse training relative to dense (RigL paper, appendix H; reproducibility study).

Per-layer forward FLOPs of one sample come from `torch.utils.flop_counter` on the dense network; a layer
at density d costs d times its dense count (FLOPs outside prunable layers stay dense). With f_S and f_D the
sparse and dense forward costs, a training step costs 3 f_S (forward, gradient of the activations,
gradient of the weights: the paper's convention) and dense training 3 f_D. A RigL mask update needs the
dense weight gradient, so that iteration costs 2 f_S + f_D; SET and static sparse never do.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from compress.mask import Mask
from compress.models import prunable


def layer_flops(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[dict[str, int], int]:
    """(forward FLOPs of one sample per prunable weight, FLOPs everywhere else) of the dense `model`."""
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape))
    model.train(was_training)
    counts = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    root = type(model).__name__
    per_layer = {}
    for name in prunable(model):
        module = name[: -len(".weight")] if name.endswith(".weight") else ""
        per_layer[name] = int(counts.get(f"{root}.{module}" if module else root, 0))
    return per_layer, int(counts.get("Global", 0)) - sum(per_layer.values())


def flops(model: nn.Module, input_shape: tuple[int, ...], mask: Mask, iterations: int, mask_updates: int = 0,
          dense_gradient: bool = False, dense_iterations: int | None = None) -> dict[str, Any]:
    """Inference and training FLOPs relative to dense training for `dense_iterations` (default: as long).

    `mask_updates` iterations computed the dense gradient when `dense_gradient` (RigL); training FLOPs count
    the per-layer densities of `mask` (fixed during dynamic sparse training).
    """
    per_layer, other = layer_flops(model, input_shape)
    density = {n: int(m.sum()) / m.numel() for n, m in mask.items()}
    f_dense = sum(per_layer.values()) + other
    f_sparse = sum(density.get(n, 1.0) * f for n, f in per_layer.items()) + other
    extra = mask_updates * (f_dense - f_sparse) if dense_gradient else 0.0
    train = 3 * f_sparse * iterations + extra
    dense_train = 3 * f_dense * (dense_iterations if dense_iterations is not None else iterations)
    return {
        "inference_flops": f_sparse, "dense_inference_flops": f_dense,
        "inference_flops_ratio": f_sparse / f_dense, "train_flops": train, "dense_train_flops": dense_train,
        "train_flops_ratio": train / dense_train, "dense_gradient_iterations": mask_updates if dense_gradient else 0,
        "per_layer": {n: {"dense_flops": f, "density": density.get(n, 1.0)} for n, f in per_layer.items()},
        "other_flops": other,
    }
