"""Structured units: conv output channels and linear neurons, removable together with what they couple to.

The dependency tracking is Torch-Pruning's DepGraph (Fang et al., "DepGraph: Towards Any Structural
Pruning", CVPR 2023): it follows the autograd graph of one forward, so BatchNorm, flatten, concat and
residual adds are coupled correctly for any model that runs a forward, traceable or not. Which groups
count as units, in which order, and how they are gated, scored and kept is decided here and in the
methods, not by Torch-Pruning's pruners.

A group is named after its first producing layer in forward order (a module name such as "2" or
"layers.0.conv1"); its units are that layer's output channels (Conv2d) or neurons (Linear). The output
layer's units (the classes) are never units.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from compress.errors import UsageError
from compress.models import output_layer

LAYER_TYPES = (nn.Conv2d, nn.Linear)


@dataclass(frozen=True)
class Consumer:
    """A conv/linear layer that reads the units: input position `positions[i]` carries unit `units[i]`."""

    name: str
    positions: tuple[int, ...]
    units: tuple[int, ...]


@dataclass(frozen=True)
class UnitGroup:
    """Units removed together: `size` output channels of `producers` (more than one: a residual add)."""

    name: str
    size: int
    producers: tuple[str, ...]
    consumers: tuple[Consumer, ...]
    coupled_modules: tuple[str, ...]  # BatchNorm and other modules sliced with the units

    @property
    def coupled(self) -> bool:
        """True when several layers output these units (a residual add, a depthwise conv): not one layer's width."""
        return len(self.producers) > 1


def kept_count(size: int, keep: float) -> int:
    """Units kept of `size` at fraction `keep`: the registry's width rounding, so a 25% net has the shape of
    the same model built with width 0.25."""
    return max(1, min(size, round(size * keep)))


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for a tracing forward: BatchNorm running statistics must not move."""
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


def _trace(model: nn.Module, input_shape: tuple[int, ...]):
    """One forward: DepGraph's autograd trace, and the order the forward first calls each conv/linear layer."""
    import torch_pruning as tp

    order: list[str] = []
    handles = [m.register_forward_hook(lambda mod, i, o, n=n: order.append(n) if n not in order else None)
               for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)]
    with eval_mode(model), torch.enable_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DepGraph warns about unwrapped parameters it does not prune
        try:
            dg = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, *input_shape))
        except Exception as e:  # noqa: BLE001 - a forward that fails on the sample shape is the user's to fix
            raise UsageError(f"cannot trace {type(model).__name__} with inputs of shape {tuple(input_shape)} to "
                             f"find its structured units ({type(e).__name__}: {str(e).splitlines()[0]}). The "
                             "model must run a forward on one sample of the dataset's shape.") from e
        finally:
            for h in handles:
                h.remove()
    return dg, order


def _group(dg, module: nn.Module, names: dict[nn.Module, str], order: list[str]) -> UnitGroup | None:
    """The group of `module`'s output channels, or None when DepGraph couples layers of other widths to them."""
    pruner = dg.get_pruner_of_module(module)
    size = pruner.get_out_channels(module)
    group = dg.get_pruning_group(module, pruner.prune_out_channels, list(range(size)))
    producers, consumers, coupled = [], [], []
    for item in group:
        target = item.dep.target.module
        name = names.get(target)
        if name is None:
            continue
        if dg.is_out_channel_pruning_fn(item.dep.handler):
            width = dg.get_pruner_of_module(target).get_out_channels(target) if isinstance(target, nn.Module) else None
            if width is not None and (width != size or max(item.idxs) >= width):
                return None  # DepGraph mis-couples it (seen: a concat flattened into a linear layer)
            (producers if isinstance(target, LAYER_TYPES) else coupled).append(name)
        elif isinstance(target, LAYER_TYPES):
            consumers.append(Consumer(name, tuple(int(i) for i in item.idxs), tuple(int(r) for r in item.root_idxs)))
        else:
            coupled.append(name)
    rank = {n: i for i, n in enumerate(order)}
    producers = sorted(set(producers), key=lambda n: rank.get(n, len(rank)))
    return UnitGroup(producers[0], size, tuple(producers), tuple(consumers), tuple(sorted(set(coupled))))


def analyze(model: nn.Module, input_shape: tuple[int, ...]):  # -> (DependencyGraph, list[UnitGroup])
    """DepGraph of `model` and every group of removable units in forward order (the output layer excluded)."""
    dg, order = _trace(model, input_shape)
    names = {m: n for n, m in model.named_modules()}
    last = model.get_submodule(output_layer(model).removesuffix(".weight"))
    groups: list[UnitGroup] = []
    seen: set[str] = set()
    for name in order:
        module = model.get_submodule(name)
        if module is last or name in seen:
            continue
        g = _group(dg, module, names, order)
        if g is None:
            continue
        seen.update(g.producers)
        if names[last] not in g.producers:
            groups.append(g)
    return dg, groups


def unit_groups(model: nn.Module, input_shape: tuple[int, ...], include_coupled: bool = True) -> list[UnitGroup]:
    """Every group of removable units of `model`, in forward order (the output layer excluded).

    `include_coupled=False` drops residual streams: the units of GFS, and of Li et al.'s ResNet pruning,
    are the layers inside blocks. A layer whose coupling DepGraph gets wrong (producers of another width in its
    group; seen in Torch-Pruning 1.6 for a concat flattened into a linear layer) is not offered as a unit."""
    return [g for g in analyze(model, input_shape)[1] if include_coupled or not g.coupled]


def group_by_name(groups: list[UnitGroup], name: str) -> UnitGroup:
    for g in groups:
        if g.name == name or name in g.producers:
            return g
    raise UsageError(f"'{name}' names no group of removable units. Unit groups (by first layer): "
                     f"{', '.join(g.name for g in groups) or 'none'}.")


def gateable(model: nn.Module, group: UnitGroup) -> str:
    """Why the units of `group` cannot be gated one by one (GFS), or "" when they can: a single producer
    whose every consumer is a plain conv/linear layer reading them."""
    if group.coupled:
        return (f"its units are also the outputs of {', '.join(group.producers[1:])}: a residual stream (or a "
                "depthwise conv)")
    if not group.consumers:
        return "no conv/linear layer reads its units"
    for c in group.consumers:
        m = model.get_submodule(c.name)
        if isinstance(m, nn.Conv2d) and m.groups != 1:
            return f"its consumer {c.name} is a grouped conv"
    return ""


__all__ = ["Consumer", "UnitGroup", "analyze", "gateable", "group_by_name", "kept_count", "unit_groups"]
