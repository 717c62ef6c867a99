"""GFS's width rescaling as a fixed multiplier while training, folded into the weights afterwards.

Greedy forward selection multiplies each kept unit of a layer by n / |S|. The reference code keeps that
factor as a fixed (untrained) multiplier after the unit's activation while it finetunes (its mask layer),
and MobileNetV2's BatchNorm after every conv makes the factor immaterial to training there. In a network
without BatchNorm (LeNet, Conv-4) folding the factor into the next layer's weights before training is the
same function but not the same optimization: Adam then moves those weights by the same absolute steps
although they are n / |S| times larger, and the rescaled network trains measurably worse. So during each
finetune the consumers' weights are parametrized as W = s * V (s the fixed factors, V trained, V starting
at W / s), which is the reference's multiplier; afterwards W is written back as a plain weight.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from compress.structured.units import unit_groups


class FixedScale(nn.Module):
    """weight = original * scale (per input position); right_inverse makes registering keep the value."""

    def __init__(self, scale: torch.Tensor, ndim: int) -> None:
        super().__init__()
        self.register_buffer("scale", scale.view(1, -1, *([1] * (ndim - 2))))

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return original * self.scale

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return weight / self.scale


def consumer_scales(model: nn.Module, input_shape: tuple[int, ...],
                    factors: Mapping[str, float]) -> dict[str, torch.Tensor]:
    """Per consumer layer, the factor each of its input positions is read with (1 where no factor applies)."""
    out: dict[str, torch.Tensor] = {}
    for g in unit_groups(model, input_shape):
        if g.name not in factors:
            continue
        for c in g.consumers:
            w = model.get_submodule(c.name).weight
            s = out.setdefault(c.name, torch.ones(w.shape[1], dtype=w.dtype))
            s[torch.tensor(c.positions)] = factors[g.name]
    return out


@contextlib.contextmanager
def fixed_multipliers(model: nn.Module, input_shape: tuple[int, ...], factors: Mapping[str, float]) -> Iterator[None]:
    """Inside: the consumers of each group in `factors` read it through a fixed multiplier (trained weights are
    W / factor); on exit the weights are plain again, with the same function."""
    scales = consumer_scales(model, input_shape, factors)
    for name, s in scales.items():
        m = model.get_submodule(name)
        parametrize.register_parametrization(m, "weight", FixedScale(s, m.weight.ndim))
    try:
        yield
    finally:
        for name in scales:
            parametrize.remove_parametrizations(model.get_submodule(name), "weight", leave_parametrized=True)


__all__ = ["FixedScale", "consumer_scales", "fixed_multipliers"]
