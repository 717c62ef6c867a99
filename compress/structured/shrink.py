"""Physical shrinking: a network with some units removed becomes a real, smaller `nn.Module`.

Torch-Pruning's DepGraph slices every coupled tensor (the producing layers' weights and biases, BatchNorm
parameters and running statistics, the consumers' input channels, flattened features, residual adds) so
the shrunk network computes exactly what the large one computes when the removed units are zero.

A shrunk ticket rebuilds itself: the `shrink` model transform ({"name": "shrink", "input_shape": [...],
"keep": {group: [unit indices kept]}}) is recorded in `ModelSpec.extra["transforms"]`, and
`compress.models.build(spec)` replays it on the freshly built large network before the ticket's weights
are loaded. The exporters see a plain, smaller model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from compress.errors import UsageError
from compress.models import ModelSpec
from compress.models.transforms import register
from compress.structured.units import UnitGroup, analyze, group_by_name, unit_groups

Keep = Mapping[str, Sequence[int]]


def _checked(group: UnitGroup, idxs: Sequence[int]) -> list[int]:
    kept = sorted({int(i) for i in idxs})
    if not kept:
        raise UsageError(f"unit group '{group.name}' would keep no unit; keep at least one of its {group.size}.")
    if kept[0] < 0 or kept[-1] >= group.size:
        raise UsageError(f"unit group '{group.name}' has units 0..{group.size - 1}; got index "
                         f"{kept[0] if kept[0] < 0 else kept[-1]}.")
    return kept


def shrink(model: nn.Module, keep: Keep, input_shape: tuple[int, ...]) -> nn.Module:
    """Remove from `model`, in place, every unit of each named group that is not in `keep[group]`; groups not
    named stay whole. Indices count the units of the network as it is when called. Returns the model."""
    dg, groups = analyze(model, input_shape)
    plan = [(g, _checked(g, keep[name])) for name in keep for g in [group_by_name(groups, name)]]
    for group, kept in plan:
        remove = sorted(set(range(group.size)) - set(kept))
        if not remove:
            continue
        root = model.get_submodule(group.name)
        pruner = dg.get_pruner_of_module(root)
        dg.get_pruning_group(root, pruner.prune_out_channels, remove).prune()
    return model


def shrunk_copy(model: nn.Module, keep: Keep, input_shape: tuple[int, ...]) -> nn.Module:
    """`shrink` on a deep copy: the large network is left as it was."""
    return shrink(copy.deepcopy(model), keep, input_shape)


@torch.no_grad()
def scale_units(model: nn.Module, group: UnitGroup, scale: torch.Tensor) -> None:
    """Multiply what every consumer reads of each unit by `scale[unit]`, folded into the consumers' input
    weights: exact, since a conv/linear layer is linear in each input channel. A zero scale removes a unit's
    contribution (then `shrink` can drop it without changing the function)."""
    if scale.shape != (group.size,):
        raise ValueError(f"scale for '{group.name}' must have shape ({group.size},), got {tuple(scale.shape)}")
    for c in group.consumers:
        w = model.get_submodule(c.name).weight
        pos = torch.tensor(c.positions)
        factor = scale[torch.tensor(c.units)].to(w.dtype)
        w[:, pos] *= factor.view(1, -1, *([1] * (w.ndim - 2)))


def structured_spec(spec: ModelSpec, keep: Keep) -> ModelSpec:
    """`spec` with a `shrink` transform appended: `build` of it gives the shrunk architecture."""
    step = {"name": "shrink", "input_shape": list(spec.input_shape),
            "keep": {name: sorted(int(i) for i in idxs) for name, idxs in keep.items()}}
    extra = dict(spec.extra)
    extra["transforms"] = [*extra.get("transforms", []), step]
    return ModelSpec(spec.name, spec.input_shape, spec.num_classes, spec.width, spec.init, extra)


def widths(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Units per group: the architecture a `keep` produces, comparable to a width-multiplied model."""
    return {g.name: g.size for g in unit_groups(model, input_shape)}


@register("shrink")
def _transform(model: nn.Module, cfg: dict) -> nn.Module:
    return shrink(model, cfg["keep"], tuple(cfg["input_shape"]))


__all__ = ["scale_units", "shrink", "shrunk_copy", "structured_spec", "widths"]
