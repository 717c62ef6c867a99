"""Hand-built tickets for the export tests: real models and masks, no training needed for parity checks."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from compress.mask import Mask
from compress.models import ModelSpec, build, prunable
from compress.sparsity import nm
from compress.ticket import Ticket


def mask_2of4(weight: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Keep 2 random weights in every group of 4 along the input channels (the TensorRT layout)."""
    groups = nm.to_groups(torch.rand(weight.shape, generator=gen), 4)
    top = groups.topk(2, dim=1).indices
    keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, top, True)
    return nm.from_groups(keep, tuple(weight.shape))


def random_bn_stats(model: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial running statistics and affine parameters, so BN folding is really exercised."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


def make_ticket(directory: Path, name: str = "lenet_300_100", width: float = 0.25, density: float = 0.1,
                pattern: str = "random", input_shape: tuple[int, ...] = (1, 8, 8), seed: int = 0) -> Path:
    """Save a ticket of `name` for the `digits` dataset with a mask: `random` at `density`, `2:4` (2 random weights
    kept per group of 4 input channels) or `nm` (compress.selection's N:M 2:4 selection by magnitude)."""
    spec = ModelSpec(name, input_shape, 10, width, "default")
    model = build(spec, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    random_bn_stats(model, gen)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    if pattern == "2:4":
        mask = Mask({n: mask_2of4(w, gen) for n, w in prunable(model).items()})
    elif pattern == "nm":
        from compress.selection.nm import nm_select

        weights = prunable(model)
        mask = nm_select({n: w.detach().abs() for n, w in weights.items()}, Mask.ones_like(model),
                         {n: 0.5 for n in weights}, "2:4")
    else:
        mask = Mask({n: torch.rand(w.shape, generator=gen) < density for n, w in prunable(model).items()})
    mask.apply(model)
    Ticket(spec, init, mask, model.state_dict(),
           meta={"method": "hand", "digest": "0123abcd", "dataset": "digits", "level": 1, "seed": seed},
           metrics={"test_acc": 0.0}).save(directory)
    return directory
