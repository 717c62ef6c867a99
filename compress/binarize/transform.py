"""The `binarize` model transform: swap chosen conv/linear layers for binary ones.

Recorded in `ModelSpec.extra["transforms"]` as {"name": "binarize", "layers": [...], "act": ..., "scale": ...}
so a binarized ticket rebuilds into the same module tree (the `keep` buffers come back with its state_dict).
"""

from __future__ import annotations

from torch import nn

from compress.binarize.layers import from_float
from compress.errors import UsageError
from compress.models import prunable
from compress.models.transforms import register

ACTS = ("float", "binary")


def default_layers(model: nn.Module) -> list[str]:
    """Every prunable layer except the first and the last (kept float, as in XNOR-Net, larq and biprop)."""
    return [n.removesuffix(".weight") for n in list(prunable(model))[1:-1]]


def binarize_model(model: nn.Module, layers: list[str] | None = None, act: str = "float",
                   scale: str = "channel") -> nn.Module:
    """Replace `layers` (module names) of `model` in place by binary layers; returns the model."""
    if act not in ACTS:
        raise UsageError(f"act must be one of {', '.join(ACTS)}, got '{act}'.")
    names = default_layers(model) if layers is None else list(layers)
    modules = dict(model.named_modules())
    for name in names:
        layer = modules.get(name)
        if not isinstance(layer, (nn.Conv2d, nn.Linear)):
            valid = ", ".join(n.removesuffix(".weight") for n in prunable(model))
            raise UsageError(f"cannot binarize '{name}': not a Conv2d/Linear layer of the model. Layers that can "
                             f"be binarized: {valid}.")
        parent_name, _, child = name.rpartition(".")
        parent = modules[parent_name] if parent_name else model
        setattr(parent, child, from_float(layer, scale=scale, binary_act=act == "binary"))
    return model


@register("binarize")
def _transform(model: nn.Module, cfg: dict) -> nn.Module:
    return binarize_model(model, cfg.get("layers"), cfg.get("act", "float"), cfg.get("scale", "channel"))
