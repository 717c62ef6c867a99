"""Layer-collapse guard shared by every selection (called once, from `compress.pruning.prune`).

A mask collapses a layer when it removes every weight of the layer, or when no kept weight of the
layer lies on a path from the input to the output (Tanaka et al., NeurIPS 2020, "layer collapse").
Paths are found the SynFlow way: on a copy of the net whose weights are the mask (0/1), whose
biases are zero, other parameters non-negative and BatchNorms identities, a kept weight carries
a path exactly when its gradient of sum(output) for an all-ones input is positive.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from compress.errors import LotteryError
from compress.mask import Mask
from compress.models import PRUNABLE_TYPES, prunable


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
        for mod in net.modules():
            if isinstance(getattr(mod, "bias", None), torch.Tensor):
                mod.bias.zero_()  # a bias is not a path from the input
        for name, w in weights.items():
            w.copy_(mask[name].to(w.dtype))
    shape = input_shape or _guess_input(net)
    if shape is None:
        return []
    modules = {f"{n}.weight" if n else "weight": m for n, m in net.named_modules() if isinstance(m, PRUNABLE_TYPES)}
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, name=name: seen.__setitem__(name, (i[0], o)))
             for name, m in modules.items()]
    try:
        x = torch.ones(1, *shape, dtype=torch.float64, requires_grad=True)
        total = net(x).sum()
    finally:
        for h in hooks:
            h.remove()
    names = [n for n in weights if n in seen]
    ins = torch.autograd.grad(total, [seen[n][0] for n in names] + [weights[n] for n in names], allow_unused=True)
    in_grad, w_grad = dict(zip(names, ins[: len(names)], strict=True)), dict(zip(names, ins[len(names):], strict=True))
    if float(total.detach()) > 0:  # connected overall; a branch (e.g. a residual block) may still carry no path
        return [n for n in names if bool(mask[n].any()) and not bool((mask[n] & (_pos(w_grad[n]))).any())]
    # Disconnected: name where the flow from the input dies and where the flow back from the output dies.
    dead_fwd = [n for n in names if not bool((seen[n][1] > 0).any())]
    dead_bwd = [n for n in names if not bool(_pos(in_grad[n]).any())]
    return list(dict.fromkeys(dead_fwd[:1] + dead_bwd[-1:]))


def _pos(t: torch.Tensor | None) -> torch.Tensor:
    return torch.zeros(1, dtype=torch.bool) if t is None else t > 0


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
