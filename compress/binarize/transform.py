"""The `binarize` model transform: swap chosen conv/linear layers for binary ones.

Recorded in `ModelSpec.extra["transforms"]` as {"name": "binarize", "layers": [...], "act": ..., "scale": ...}
so a binarized ticket rebuilds into the same module tree (the `keep` buffers come back with its state_dict).

Binary activations (`act="binary"`) sign the *input* of each binary layer except the model's first layer
(its input is the data, kept float as in larq and XNOR-Net). A ReLU feeding such a layer is replaced by
Identity, because sign(relu(x)) is always +1 (sign(0) = +1): the sign becomes the nonlinearity. Placements
where the input cannot be signed meaningfully (after a softmax/sigmoid, or not traceable in an
nn.Sequential) are refused, naming the layer.
"""

from __future__ import annotations

from torch import nn

from compress.binarize.layers import from_float
from compress.errors import UsageError
from compress.models import prunable
from compress.models.transforms import register

ACTS = ("float", "binary")
SUPPORTED = "Conv2d (integer padding, padding_mode='zeros') and Linear"
# Parameterized modules the binarizer knows: it binarizes convs/linears and leaves BatchNorm in float.
KNOWN_PARAM_TYPES = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)
# Modules a binary activation may look through when walking back to the producing layer.
_PASS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d,
         nn.Identity, nn.Hardtanh, nn.Tanh)
_RELUS = (nn.ReLU, nn.ReLU6)


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


def prepare_binary_act(model: nn.Module, names: list[str]) -> list[str]:
    """Check that each layer's input can be signed; replace feeding ReLUs by Identity. Returns the layers
    that get binary activations (all of `names` but the model's first layer)."""
    first = all_layers(model)[0]
    modules = dict(model.named_modules())
    chosen = [n for n in names if n != first]
    for name in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = modules[parent_name] if parent_name else model
        if not isinstance(parent, nn.Sequential):
            raise UsageError(f"binary activations cannot be placed on layer '{name}': its input is computed in "
                             f"{type(parent).__name__}.forward, which the binarizer cannot see (only layers inside "
                             "nn.Sequential are supported). Use --act float, or choose other layers.")
        kids = list(parent.named_children())
        idx = [k for k, _ in kids].index(child)
        for k, m in reversed(kids[:idx]):
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                break
            if isinstance(m, _RELUS):
                parent._modules[k] = nn.Identity()
            elif not isinstance(m, _PASS):
                raise UsageError(f"binary activations cannot be placed on layer '{name}': its input comes from "
                                 f"{type(m).__name__} ('{parent_name + '.' if parent_name else ''}{k}'), whose "
                                 "output sign carries no information (e.g. right after a softmax or sigmoid). "
                                 "Use --act float, or keep that layer float.")
        else:
            raise UsageError(f"binary activations cannot be placed on layer '{name}': its input does not come from "
                             "a conv/linear layer of the same nn.Sequential. Use --act float for this model.")
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
