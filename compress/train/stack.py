"""Several networks of one architecture as one stacked network: each member's layers become one batched layer.

The members are folded into the batch: a stacked forward takes the members' batches concatenated, member
after member (M*B rows), and returns their outputs in the same order. Layers without parameters (ReLU,
pooling, flatten, residual additions, the model's own `forward` code) work on the folded batch unchanged,
since they treat rows independently; each layer with parameters is replaced by a batched twin:
- `nn.Linear` -> one `torch.baddbmm` over weights stored (M, in, out), so weight gradients come out of the
  batched matmul contiguous (no copy into the gradient buffer);
- `nn.Conv2d` -> one grouped convolution (M*groups groups) over the members' channels side by side;
- `nn.BatchNorm1d/2d` -> one batch norm over the members' channels side by side (statistics per member).
A loss summed over members gives each member exactly its own gradient, and elementwise optimizers (SGD with
momentum and weight decay, Adam, AdamW) on the stacked tensors give each member exactly its own update, so
training the stack equals training the members one by one within float tolerance (Part 2 of issue 16).

`stack(models)` returns None with the reason when a model cannot be stacked exactly: another layer type with
parameters or buffers, active dropout (its random draws would differ), or a forward that mixes rows (checked
by comparing the stacked forward with every member's own on a probe batch).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


class StackedLinear(nn.Module):
    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.m = len(layers)
        self.weight = nn.Parameter(torch.stack([lay.weight.detach().t() for lay in layers]).contiguous())
        has_bias = layers[0].bias is not None
        self.bias = nn.Parameter(torch.stack([lay.bias.detach() for lay in layers])) if has_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        x = x.reshape(self.m, -1, x.shape[-1])
        y = torch.bmm(x, self.weight) if self.bias is None else torch.baddbmm(self.bias.unsqueeze(1), x, self.weight)
        return y.reshape(*lead, y.shape[-1])


def _side_by_side(x: torch.Tensor, m: int) -> torch.Tensor:
    """(M*B, C, ...) -> (B, M*C, ...): the members' channels side by side, one sample per row."""
    b = x.shape[0] // m
    return x.reshape(m, b, *x.shape[1:]).transpose(0, 1).reshape(b, m * x.shape[1], *x.shape[2:])


def _folded(y: torch.Tensor, m: int) -> torch.Tensor:
    """Inverse of `_side_by_side`."""
    b, c = y.shape[0], y.shape[1] // m
    return y.reshape(b, m, c, *y.shape[2:]).transpose(0, 1).reshape(m * b, c, *y.shape[2:])


class StackedConv2d(nn.Module):
    def __init__(self, layers: Sequence[nn.Conv2d]) -> None:
        super().__init__()
        first = layers[0]
        self.m, self.opts = len(layers), (first.stride, first.padding, first.dilation, first.groups * len(layers))
        if first.padding_mode != "zeros" or isinstance(first.padding, str):
            raise _Unstackable(f"Conv2d with padding {first.padding!r} / mode {first.padding_mode}")
        self.weight = nn.Parameter(torch.cat([lay.weight.detach() for lay in layers]))
        self.bias = nn.Parameter(torch.cat([lay.bias.detach() for lay in layers])) if first.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stride, padding, dilation, groups = self.opts
        y = F.conv2d(_side_by_side(x, self.m), self.weight, self.bias, stride, padding, dilation, groups)
        return _folded(y, self.m)


class StackedBatchNorm(nn.Module):
    def __init__(self, layers: Sequence[nn.BatchNorm1d | nn.BatchNorm2d]) -> None:
        super().__init__()
        first = layers[0]
        if not first.track_running_stats or first.momentum is None:
            raise _Unstackable("BatchNorm without running statistics or with cumulative averaging")
        self.m, self.eps, self.momentum = len(layers), first.eps, first.momentum
        cat = lambda name: torch.cat([getattr(lay, name).detach() for lay in layers])  # noqa: E731
        self.weight = nn.Parameter(cat("weight")) if first.affine else None
        self.bias = nn.Parameter(cat("bias")) if first.affine else None
        self.register_buffer("running_mean", cat("running_mean"))
        self.register_buffer("running_var", cat("running_var"))
        self.register_buffer("num_batches_tracked", torch.stack([lay.num_batches_tracked for lay in layers]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.num_batches_tracked.add_(1)
        y = F.batch_norm(_side_by_side(x, self.m), self.running_mean, self.running_var, self.weight, self.bias,
                         self.training, self.momentum, self.eps)
        return _folded(y, self.m)


class _Unstackable(Exception):
    pass


_TWINS: dict[type, type[nn.Module]] = {nn.Linear: StackedLinear, nn.Conv2d: StackedConv2d,
                                       nn.BatchNorm1d: StackedBatchNorm, nn.BatchNorm2d: StackedBatchNorm}


class StackedNet:
    """`net` runs all members at once; `to_stacked`/`member` move state between members and the stack."""

    def __init__(self, net: nn.Module, members: int, layout: dict[str, tuple[str, str]]) -> None:
        self.net, self.m = net, members
        self.layout = layout  # member state_dict name -> (stacked state_dict name, "t" | "cat" | "stack")
        self.tensors = dict(net.state_dict(keep_vars=True))

    def to_stacked(self, name: str, per_member: Sequence[torch.Tensor]) -> torch.Tensor:
        """Member tensors of state entry `name` in the stacked layout."""
        how = self.layout[name][1]
        if how == "t":
            return torch.stack([t.t() for t in per_member]).contiguous()
        return torch.cat(list(per_member)) if how == "cat" else torch.stack(list(per_member))

    def member(self, i: int) -> dict[str, torch.Tensor]:
        """Member `i`'s state_dict (copies) from the stack."""
        out = {}
        for name, (key, how) in self.layout.items():
            t = self.tensors[key].detach()
            if how == "t":
                out[name] = t[i].t().clone()
            elif how == "cat":
                n = t.shape[0] // self.m
                out[name] = t[i * n:(i + 1) * n].clone()
            else:
                out[name] = t[i].clone()
        return out

    def stacked_param(self, name: str) -> torch.Tensor:
        return self.tensors[self.layout[name][0]]


def stack(models: Sequence[nn.Module], probe: torch.Tensor | None = None) -> tuple[StackedNet | None, str]:
    """(the stacked network of `models`, "") or (None, why they cannot be stacked exactly)."""
    first = models[0]
    if any(type(m) is not type(first) for m in models):
        return None, "the members have different model classes"
    shapes = {k: v.shape for k, v in first.state_dict().items()}
    if any({k: v.shape for k, v in m.state_dict().items()} != shapes for m in models):
        return None, "the members' weights differ in names or shapes"
    for name, mod in first.named_modules():
        if isinstance(mod, nn.modules.dropout._DropoutNd) and mod.p > 0:
            return None, f"{name} is dropout (each member's random draws would differ from training it alone)"
    net = copy.deepcopy(first)
    layout: dict[str, tuple[str, str]] = {}
    try:
        for name, mod in list(first.named_modules()):
            own = list(mod.named_parameters(recurse=False)) + list(mod.named_buffers(recurse=False))
            if not own:
                continue
            if type(mod) not in _TWINS:
                return None, f"layer {name or 'model'} ({type(mod).__name__}) has no batched twin"
            twin = _TWINS[type(mod)]([dict(m.named_modules())[name] for m in models])
            _replace(net, name, twin)
            for key, _ in own:
                how = "t" if isinstance(mod, nn.Linear) and key == "weight" else (
                    "stack" if key == "num_batches_tracked" or isinstance(mod, nn.Linear) else "cat")
                full = f"{name}.{key}" if name else key
                layout[full] = (full, how)
    except _Unstackable as e:
        return None, str(e)
    stacked = StackedNet(net, len(models), layout)
    if probe is not None and not _matches(stacked, models, probe):
        return None, "the stacked forward differs from the members' own (the model's forward mixes batch rows)"
    return stacked, ""


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


@torch.no_grad()
def _matches(stacked: StackedNet, models: Sequence[nn.Module], probe: torch.Tensor) -> bool:
    """The stacked forward equals each member's forward on its own input (the probe scaled differently per
    member, so a forward mixing rows across members shows), in train and in eval mode (on copies)."""
    inputs = [probe * (1.0 + 0.5 * i) for i in range(len(models))]
    for train_mode in (True, False):
        net = copy.deepcopy(stacked.net).train(train_mode)
        outs = net(torch.cat(inputs))
        for i, m in enumerate(models):
            ref = copy.deepcopy(m).train(train_mode)(inputs[i])
            got = outs[i * len(probe):(i + 1) * len(probe)]
            if got.shape != ref.shape or not torch.allclose(got, ref, rtol=1e-4, atol=1e-5):
                return False
    return True
