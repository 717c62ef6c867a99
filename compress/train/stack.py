"""Several networks of one architecture as one stacked network: each member's layers become one batched layer.

The members are folded into the batch: a stacked forward takes the members' batches concatenated, member
after member (M*B rows), and returns their outputs in the same order. Layers without parameters (ReLU,
pooling, flatten, residual additions, the model's own `forward` code) work on the folded batch unchanged,
since they treat rows independently; each layer with parameters is replaced by a batched twin:
- `nn.Linear` -> one `torch.baddbmm` over the members' weights (M, out, in) where that batched matmul gives each
  member bitwise what `F.linear` gives a lone model (probed per shape and thread count), else one matmul per
  member; backward likewise (the gradients come out in the weights' layout, no copy);
- `nn.Conv2d`, `nn.BatchNorm1d/2d` -> one call per member on its part of the batch (a grouped convolution is
  one call but rounds differently), with its own statistics and running averages for batch norm.
Every member's parameters are entry i of stacked (M, ...) tensors.
A loss summed over members gives each member exactly its own gradient, and elementwise optimizers (SGD with
momentum and weight decay, Adam, AdamW) stepping each member's slices give it exactly its own update: every
member's computation uses the kernels a lone model's uses, so training the stack equals training the members
one by one bit for bit (tests/compress/test_stacked.py; issue 16, part 2).

`stack(models)` returns None with the reason when a model cannot be stacked exactly: another layer type with
parameters or buffers, active dropout (its random draws would differ), or a forward that mixes rows (checked
by comparing the stacked forward with every member's own on a probe batch).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


_EXACT: dict[tuple, bool] = {}


def _fwd(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, batched: bool) -> torch.Tensor:
    if batched:
        wt = w.transpose(1, 2)
        return torch.bmm(x, wt) if b is None else torch.baddbmm(b.unsqueeze(1), x, wt)
    if b is None:
        return torch.stack([xm.mm(wm.t()) for xm, wm in zip(x, w, strict=True)])
    return torch.stack([torch.addmm(bm, xm, wm.t()) for bm, xm, wm in zip(b, x, w, strict=True)])


def _gx(g: torch.Tensor, w: torch.Tensor, batched: bool) -> torch.Tensor:
    return torch.bmm(g, w) if batched else torch.stack([gm.mm(wm) for gm, wm in zip(g, w, strict=True)])


def _gw(g: torch.Tensor, x: torch.Tensor, batched: bool) -> torch.Tensor:
    if batched:
        return torch.bmm(g.transpose(1, 2), x)
    return torch.stack([gm.t().mm(xm) for gm, xm in zip(g, x, strict=True)])


def _exact(op: Any, *like: torch.Tensor | None) -> bool:
    """Whether `op` batched over the members gives each member bitwise what one matmul per member gives it (the
    kernels `F.linear` and its backward use for one model), for these shapes at this thread count: MKL splits
    a batched matmul across threads differently than one matmul, so it depends on both. Probed once per
    shape with random data; where it is not exact the caller loops over the members."""
    key = (op.__name__, tuple(None if t is None else t.shape for t in like), like[0].dtype, torch.get_num_threads())
    if key not in _EXACT:
        g = torch.Generator().manual_seed(0)
        args = [None if t is None else torch.randn(t.shape, generator=g, dtype=t.dtype) for t in like]
        _EXACT[key] = torch.equal(op(*args, batched=True), op(*args, batched=False))
    return _EXACT[key]


class _BatchedLinear(torch.autograd.Function):
    """y[m] = x[m] W[m]^T + b[m], computed per member exactly as `F.linear` and its backward compute it for one
    model (addmm on a transposed weight view; input gradient g W; weight gradient g^T x; bias gradient summed
    over the batch): batched where that is bitwise the same (`_exact`), else one matmul per member."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        return _fwd(x, w, b, batched=_exact(_fwd, x, w, b))

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, w = ctx.saved_tensors
        gx = _gx(g, w, batched=_exact(_gx, g, w)) if ctx.needs_input_grad[0] else None
        gw = _gw(g, x, batched=_exact(_gw, g, x)) if ctx.needs_input_grad[1] else None
        # Per member, as a lone model sums its (B, out) gradient: a reduction over the middle dimension of the
        # stacked (M, B, out) tensor takes another summation order.
        gb = torch.stack([gm.sum(0) for gm in g]) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb


class StackedLinear(nn.Module):
    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.m = len(layers)
        self.weight = nn.Parameter(torch.stack([lay.weight.detach() for lay in layers]))
        has_bias = layers[0].bias is not None
        self.bias = nn.Parameter(torch.stack([lay.bias.detach() for lay in layers])) if has_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        y = _BatchedLinear.apply(x.reshape(self.m, -1, x.shape[-1]), self.weight, self.bias)
        return y.reshape(*lead, y.shape[-1])


class StackedConv2d(nn.Module):
    """One convolution per member on its part of the folded batch, with the kernels a lone model uses (a grouped
    convolution would be one call, but not bitwise the same); the weights stacked (M, out, in, kh, kw)."""

    def __init__(self, layers: Sequence[nn.Conv2d]) -> None:
        super().__init__()
        first = layers[0]
        if first.padding_mode != "zeros":
            raise _Unstackable(f"Conv2d with padding mode {first.padding_mode}")
        self.m, self.opts = len(layers), (first.stride, first.padding, first.dilation, first.groups)
        self.weight = nn.Parameter(torch.stack([lay.weight.detach() for lay in layers]))
        has_bias = first.bias is not None
        self.bias = nn.Parameter(torch.stack([lay.bias.detach() for lay in layers])) if has_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        biases = self.bias.unbind(0) if self.bias is not None else [None] * self.m
        return torch.cat([F.conv2d(xm, wm, bm, *self.opts)
                          for xm, wm, bm in zip(x.chunk(self.m), self.weight.unbind(0), biases, strict=True)])


class StackedBatchNorm(nn.Module):
    """One batch norm per member on its part of the folded batch (its own statistics and running averages)."""

    def __init__(self, layers: Sequence[nn.BatchNorm1d | nn.BatchNorm2d]) -> None:
        super().__init__()
        first = layers[0]
        if not first.track_running_stats or first.momentum is None:
            raise _Unstackable("BatchNorm without running statistics or with cumulative averaging")
        self.m, self.eps, self.momentum = len(layers), first.eps, first.momentum
        stack = lambda name: torch.stack([getattr(lay, name).detach() for lay in layers])  # noqa: E731
        self.weight = nn.Parameter(stack("weight")) if first.affine else None
        self.bias = nn.Parameter(stack("bias")) if first.affine else None
        self.register_buffer("running_mean", stack("running_mean"))
        self.register_buffer("running_var", stack("running_var"))
        self.register_buffer("num_batches_tracked", stack("num_batches_tracked"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.num_batches_tracked.add_(1)
        weights = self.weight.unbind(0) if self.weight is not None else [None] * self.m
        biases = self.bias.unbind(0) if self.bias is not None else [None] * self.m
        return torch.cat([F.batch_norm(xm, self.running_mean[i], self.running_var[i], weights[i], biases[i],
                                       self.training, self.momentum, self.eps)
                          for i, xm in enumerate(x.chunk(self.m))])


class _Unstackable(Exception):
    pass


_TWINS: dict[type, type[nn.Module]] = {nn.Linear: StackedLinear, nn.Conv2d: StackedConv2d,
                                       nn.BatchNorm1d: StackedBatchNorm, nn.BatchNorm2d: StackedBatchNorm}


class StackedNet:
    """`net` runs all members at once; `to_stacked`/`member` move state between members and the stack."""

    def __init__(self, net: nn.Module, members: int, layout: dict[str, str]) -> None:
        self.net, self.m = net, members
        self.layout = layout  # member state_dict name -> stacked state_dict name (member i is entry i)
        self.tensors = dict(net.state_dict(keep_vars=True))

    @staticmethod
    def to_stacked(per_member: Sequence[torch.Tensor]) -> torch.Tensor:
        """Member tensors of one state entry (weights, masks) in the stacked layout."""
        return torch.stack(list(per_member))

    def member(self, i: int) -> dict[str, torch.Tensor]:
        """Member `i`'s state_dict (copies) from the stack."""
        return {name: self.tensors[key].detach()[i].clone() for name, key in self.layout.items()}

    def stacked_param(self, name: str) -> torch.Tensor:
        return self.tensors[self.layout[name]]


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
    layout: dict[str, str] = {}
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
                full = f"{name}.{key}" if name else key
                layout[full] = full
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
