"""The network as a list of steps for the LCE export: torch.fx traces any forward (nn.Sequential chains,
residual blocks, ...) with the layers LCE can express as leaves.

Each step names the tensor it produces (the fx node name) and the tensors it reads, so branches and
residual adds survive; everything the export cannot express is collected and raised in one error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import fx, nn

from compress.models.fx_calls import ADD_CALLS, RELU_CALLS
from export.errors import ExportError

ELEMENTWISE = (nn.ReLU, nn.Hardtanh, nn.Identity, nn.Dropout)
LEAVES = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
          nn.Flatten, *ELEMENTWISE)
SUPPORTED = ("Conv2d, Linear, BinaryConv2d, BinaryLinear, BatchNorm1d/2d, ReLU, Hardtanh, MaxPool2d, AvgPool2d, "
             "AdaptiveAvgPool2d(1), Flatten, Dropout, Identity, in any forward (nn.Sequential, residual blocks) "
             "that torch.fx can trace, with the functions x + y / torch.add, relu and flatten(x, 1)")


class UnsupportedLayersError(ExportError):
    """Layers that Larq Compute Engine (through larq/Keras) cannot express."""


@dataclass
class Step:
    """One traced operation: `kind` is input, module, add, relu, flatten or output."""

    name: str
    kind: str
    inputs: list[str] = field(default_factory=list)
    module: nn.Module | None = None
    target: str = ""      # the module's qualified name (a layer name in reports)
    users: int = 0        # how many steps read this one's output


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, LEAVES) or super().is_leaf_module(m, qualname)


def _module_problem(name: str, m: nn.Module) -> str | None:
    if not isinstance(m, LEAVES):
        return f"{name} ({type(m).__name__}: no LCE equivalent)"
    if isinstance(m, nn.Conv2d) and (m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str)):
        return f"{name} (Conv2d with groups={m.groups}, padding={m.padding!r}, mode={m.padding_mode})"
    if isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size not in (1, (1, 1)):
        return f"{name} (AdaptiveAvgPool2d to {m.output_size}: only global pooling (1) is supported)"
    return None


def _function_kind(node: fx.Node) -> str | None:
    """add / relu / flatten for the calls the export understands, else None."""
    t, args, kwargs = node.target, node.args, node.kwargs
    tensors = [a for a in args if isinstance(a, fx.Node)]
    if t in ADD_CALLS and len(args) == 2 and len(tensors) == 2 and not kwargs:
        return "add"
    if t in RELU_CALLS and len(tensors) == 1 and len(args) == 1:
        return "relu"
    if t in (torch.flatten, "flatten") and len(tensors) == 1:
        start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
        end = args[2] if len(args) > 2 else kwargs.get("end_dim", -1)
        return "flatten" if start == 1 and end == -1 else None
    return None


def trace(model: nn.Module) -> list[Step]:
    """The steps of `model`'s forward in execution order; raises listing every part LCE cannot express."""
    try:
        graph = _Tracer().trace(model)
    except Exception as e:  # fx raises many types (TraceError, TypeError, ...) for untraceable forwards
        raise UnsupportedLayersError(
            f"the model's forward cannot be traced by torch.fx ({type(e).__name__}: {e}); LCE export needs a "
            f"static graph of: {SUPPORTED}.") from e
    steps: list[Step] = []
    bad: list[str] = []
    for node in graph.nodes:
        inputs = [a.name for a in node.all_input_nodes]
        step = Step(node.name, "", inputs, users=len(node.users))
        if node.op == "placeholder":
            step.kind = "input"
        elif node.op == "output":
            step.kind = "output"
        elif node.op == "call_module":
            m = model.get_submodule(str(node.target))
            step.kind, step.module, step.target = "module", m, str(node.target)
            if (problem := _module_problem(str(node.target), m)) is not None:
                bad.append(problem)
        elif node.op in ("call_function", "call_method") and (kind := _function_kind(node)) is not None:
            step.kind = kind
        else:
            what = getattr(node.target, "__name__", str(node.target))
            bad.append(f"{node.name} ({node.op} {what}: no LCE equivalent)")
        steps.append(step)
    if bad:
        raise UnsupportedLayersError(
            f"the model has layers Larq Compute Engine export cannot express: {'; '.join(bad)}. "
            f"Supported: {SUPPORTED}.")
    return steps
