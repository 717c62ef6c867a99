"""The `binarize` model transform: swap chosen conv/linear layers for binary ones.

Recorded in `ModelSpec.extra["transforms"]` as {"name": "binarize", "layers": [...], "act": ..., "scale": ...}
so a binarized ticket rebuilds into the same module tree (the `keep` buffers come back with its state_dict).

Binary activations (`act="binary"`) sign the *input* of each binary layer except the model's first layer
(its input is the data, kept float as in larq and XNOR-Net). A ReLU feeding such a layer is replaced by
Identity, because sign(relu(x)) is always +1 (sign(0) = +1): the sign becomes the nonlinearity. The forward
is traced with torch.fx, so residual blocks work. Placements where the input cannot be signed meaningfully
(after a softmax/sigmoid, a relu function call, or an untraceable forward) are refused, naming the layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import fx, nn

from compress.binarize.layers import from_float
from compress.errors import UsageError
from compress.models import prunable
from compress.models.fx_calls import ADD_CALLS, RELU_CALLS
from compress.models.transforms import register

ACTS = ("float", "binary")
SUPPORTED = "Conv2d (integer padding, padding_mode='zeros') and Linear"
# Parameterized modules the binarizer knows: it binarizes convs/linears and leaves BatchNorm in float.
KNOWN_PARAM_TYPES = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)
# Modules a binary activation may look through when walking back to the producing layer.
_PASS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d,
         nn.Identity, nn.Hardtanh, nn.Tanh)
_RELUS = (nn.ReLU, nn.ReLU6)
_RELU_CALLS = (*RELU_CALLS, F.relu6)
# Calls that move or pool values without changing their signs' meaning.
_PASS_CALLS = (torch.flatten, "flatten", torch.reshape, "reshape", "view", "contiguous", F.max_pool2d, F.avg_pool2d,
               F.adaptive_avg_pool2d, F.dropout)


def default_layers(model: nn.Module) -> list[str]:
    """Every prunable layer except the first and the last (kept float, as in XNOR-Net, larq and biprop)."""
    return [n.removesuffix(".weight") for n in list(prunable(model))[1:-1]]


def all_layers(model: nn.Module) -> list[str]:
    """Every prunable layer (MPT binarizes all of them)."""
    return [n.removesuffix(".weight") for n in prunable(model)]


def check_supported(model: nn.Module, names: list[str]) -> None:
    """Refuse models with parameterized layers the binarizer does not know, and unsupported chosen layers."""
    modules = dict(model.named_modules())
    unknown = [f"{n} ({type(m).__name__})" for n, m in modules.items()
               if not list(m.children()) and any(True for _ in m.parameters(recurse=False))
               and not isinstance(m, KNOWN_PARAM_TYPES)]
    for name in names:
        layer = modules.get(name)
        if layer is None:
            valid = ", ".join(all_layers(model))
            raise UsageError(f"cannot binarize '{name}': the model has no such layer. Layers that can be "
                             f"binarized: {valid}.")
        conv_ok = isinstance(layer, nn.Conv2d) and not isinstance(layer.padding, str) and layer.padding_mode == "zeros"
        ok = isinstance(layer, nn.Linear) or conv_ok
        if not ok and f"{name} ({type(layer).__name__})" not in unknown:
            unknown.append(f"{name} ({type(layer).__name__})")
    if unknown:
        raise UsageError(f"the binarizer does not know these layers: {', '.join(unknown)}. Supported: {SUPPORTED} "
                         "are binarized; BatchNorm1d/2d and parameter-free modules stay float. Choose other layers "
                         "or replace these.")


def _input_chain_error(name: str, why: str) -> UsageError:
    return UsageError(f"binary activations cannot be placed on layer '{name}': {why}. Use --act float, or keep "
                      "that layer float.")


def prepare_binary_act(model: nn.Module, names: list[str]) -> list[str]:
    """Check that each layer's input can be signed; replace feeding ReLU modules by Identity. Returns the
    layers that get binary activations (all of `names` but the model's first layer).

    The forward is traced with torch.fx, so layers inside residual blocks (any static forward) are placed
    too. From each layer's input the walk goes back through pass-through modules to the producing conv,
    linear or add; a ReLU module met on the way becomes Identity wherever the model uses it.
    """
    first = all_layers(model)[0]
    chosen = [n for n in names if n != first]
    if not chosen:
        return chosen
    try:
        graph = fx.Tracer().trace(model)
    except Exception as e:  # fx raises many types for forwards it cannot trace
        raise UsageError(f"binary activations need a forward torch.fx can trace to place the signs, and this "
                         f"model's cannot be ({type(e).__name__}: {e}). Use --act float.") from e
    calls = {str(n.target): n for n in graph.nodes if n.op == "call_module"}
    relus: set[str] = set()
    for name in chosen:
        node = calls.get(name)
        if node is None:
            raise _input_chain_error(name, "the model's forward never calls it")
        cur = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
        while cur is not None:
            if cur.op == "call_module":
                m = model.get_submodule(str(cur.target))
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    break
                if isinstance(m, _RELUS):
                    relus.add(str(cur.target))
                elif not isinstance(m, _PASS):
                    raise _input_chain_error(name, f"its input comes from {type(m).__name__} ('{cur.target}'), "
                                             "whose output sign carries no information (e.g. right after a "
                                             "softmax or sigmoid)")
            elif cur.op not in ("call_function", "call_method"):
                raise _input_chain_error(name, "its input is the network's input, not the output of a conv/linear "
                                         "layer or a residual add")
            elif cur.target in ADD_CALLS:
                break  # a sum of branches (a residual add): its sign carries information
            elif cur.target in _RELU_CALLS:
                raise _input_chain_error(name, f"its input is {getattr(cur.target, '__name__', cur.target)}(...) "
                                         "called in a forward, which the binarizer cannot swap for Identity "
                                         "(sign(relu(x)) is always +1); use an nn.ReLU module there")
            elif cur.target not in _PASS_CALLS:
                what = getattr(cur.target, "__name__", cur.target)
                raise _input_chain_error(name, f"its input comes from {what}(...) in a forward, not from a "
                                         "conv/linear layer or a residual add")
            cur = cur.args[0] if cur.args and isinstance(cur.args[0], fx.Node) else None
    for target in relus:
        parent_name, _, child = target.rpartition(".")
        model.get_submodule(parent_name)._modules[child] = nn.Identity()
    return chosen


def binarize_model(model: nn.Module, layers: list[str] | None = None, act: str = "float",
                   scale: str = "channel") -> nn.Module:
    """Replace `layers` (module names) of `model` in place by binary layers; returns the model."""
    if act not in ACTS:
        raise UsageError(f"act must be one of {', '.join(ACTS)}, got '{act}'.")
    names = default_layers(model) if layers is None else list(layers)
    check_supported(model, names)
    binary_act = set(prepare_binary_act(model, names)) if act == "binary" else set()
    modules = dict(model.named_modules())
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = modules[parent_name] if parent_name else model
        setattr(parent, child, from_float(modules[name], scale=scale, binary_act=name in binary_act))
    return model


@register("binarize")
def _transform(model: nn.Module, cfg: dict) -> nn.Module:
    return binarize_model(model, cfg.get("layers"), cfg.get("act", "float"), cfg.get("scale", "channel"))
