"""Layer-collapse guard shared by every selection (called once, from `compress.pruning.prune`).

A mask collapses a layer when it removes every weight of the layer, or when no kept weight of the
layer lies on a path from the input to the output (Tanaka et al., NeurIPS 2020, "layer collapse").
Paths are found the SynFlow way: on a copy of the net whose weights are the mask (0/1), whose
other parameters are made non-negative and whose BatchNorms are identities, a kept weight carries
a path exactly when its gradient of sum(output) for an all-ones input is positive.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from compress.errors import LotteryError
from compress.mask import Mask
from compress.models import prunable


class LayerCollapseError(LotteryError):
    """A selection that would disconnect the network."""


def empty_layers(mask: Mask) -> list[str]:
    return [name for name, m in mask.items() if m.numel() and not bool(m.any())]


def pathless_layers(model: nn.Module, mask: Mask, input_shape: tuple[int, ...] | None = None) -> list[str]:
    """Layers with kept weights but no kept weight on an input-to-output path."""
    net = copy.deepcopy(model).double().eval()
    weights = prunable(net)
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
        for mod in net.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.reset_parameters()  # running mean 0, var 1, weight 1, bias 0: a positive scaling
        for name, w in weights.items():
            w.copy_(mask[name].to(w.dtype))
            w.requires_grad_(True)
    shape = input_shape or _guess_input(net)
    if shape is None:
        return []
    net.zero_grad(set_to_none=True)
    net(torch.ones(1, *shape, dtype=torch.float64)).sum().backward()
    out = []
    for name, w in weights.items():
        m = mask[name]
        grad = w.grad if w.grad is not None else torch.zeros_like(w)
        if bool(m.any()) and not bool((m & (grad > 0)).any()):
            out.append(name)
    return out


def _guess_input(net: nn.Module) -> tuple[int, ...] | None:
    first = next((m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))), None)
    if isinstance(first, nn.Linear):
        return (first.in_features,)
    return None  # conv nets need the dataset's input shape


def check(model: nn.Module, mask: Mask, allow_collapse: bool = False,
          input_shape: tuple[int, ...] | None = None) -> None:
    """Raise `LayerCollapseError` naming the layer(s) a mask disconnects, unless `allow_collapse`."""
    if allow_collapse:
        return
    empty = empty_layers(mask)
    if empty:
        raise LayerCollapseError(
            f"this selection would remove every weight of layer(s) {', '.join(empty)}, cutting the network "
            "in two (layer collapse). Lower the sparsity, exclude the layer (--exclude first/last/NAME), use "
            "another selection (layerwise, erk), or pass --allow-collapse to keep the mask anyway.")
    cut = pathless_layers(model, mask, input_shape)
    if cut:
        raise LayerCollapseError(
            f"this selection leaves layer(s) {', '.join(cut)} with no path from the input to the output: "
            "every kept weight there feeds or is fed by pruned units (layer collapse). Lower the sparsity, "
            "use another selection or scorer (synflow avoids collapse), or pass --allow-collapse.")
