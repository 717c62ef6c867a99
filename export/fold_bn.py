"""Fold eval-mode BatchNorm into the conv/linear layer that feeds it (Ioffe & Szegedy, 2015, sec. 3.2).

y = gamma * (Wx + b - mean) / sqrt(var + eps) + beta  ==  (s * W) x + (s * (b - mean) + beta),  s = gamma/sqrt(var+eps).
Folding is exact (up to float rounding) only when the BN uses running statistics and the layer's output
goes nowhere but into that BN; the dataflow is read with torch.fx. A model fx cannot trace is left
unfolded (the report says why). Pruned weights stay zero: folding scales whole output channels.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

LINEAR_LIKE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@dataclass
class FoldReport:
    folded: list[tuple[str, str]] = field(default_factory=list)  # (layer, batchnorm)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (batchnorm, reason)
    traceable: bool = True

    def to_dict(self) -> dict:
        return {"folded": [list(p) for p in self.folded], "skipped": [list(p) for p in self.skipped],
                "traceable": self.traceable}


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, FoldReport]:
    """A copy of `model` (eval mode) with every exactly foldable BatchNorm folded and replaced by Identity."""
    model = copy.deepcopy(model).eval()
    report = FoldReport()
    if not any(isinstance(m, BN_TYPES) for m in model.modules()):
        return model, report
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as e:  # noqa: BLE001 - any tracing failure means "cannot prove the dataflow"
        report.traceable = False
        report.skipped.append(("*", f"torch.fx cannot trace the model ({type(e).__name__}); BN left as is"))
        return model, report
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), BN_TYPES):
            continue
        bn_name, bn = node.target, modules[node.target]
        src = node.args[0] if node.args else None
        reason = _why_not(src, bn, modules, calls, bn_name)
        if reason:
            report.skipped.append((bn_name, reason))
            continue
        _fold(modules[src.target], bn)
        _replace(model, bn_name, nn.Identity())
        report.folded.append((src.target, bn_name))
    return model, report


def _why_not(src, bn: nn.Module, modules: dict, calls: dict[str, int], bn_name: str) -> str:
    if not isinstance(src, torch.fx.Node) or src.op != "call_module" or not isinstance(
            modules.get(src.target), LINEAR_LIKE):
        return "input is not a conv/linear layer"
    if len(src.users) != 1:
        return f"{src.target}'s output also feeds other ops"
    if calls.get(src.target, 0) != 1 or calls.get(bn_name, 0) != 1:
        return "module is called more than once"
    if bn.running_mean is None or bn.running_var is None:
        return "BN has no running statistics (uses batch statistics in eval)"
    layer = modules[src.target]
    if isinstance(layer, nn.Linear) and not isinstance(bn, nn.BatchNorm1d):
        return "BN after a linear layer is not BatchNorm1d"
    return ""


@torch.no_grad()
def _fold(layer: nn.Module, bn: nn.Module) -> None:
    scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
    shape = (-1,) + (1,) * (layer.weight.ndim - 1)
    w = layer.weight * scale.reshape(shape)
    b = (bias - bn.running_mean) * scale + shift
    layer.weight = nn.Parameter(w.to(layer.weight.dtype), requires_grad=False)
    layer.bias = nn.Parameter(b.to(w.dtype), requires_grad=False)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)
