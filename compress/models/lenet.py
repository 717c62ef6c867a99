"""LeNet-300-100, the fully connected net of the Lottery Ticket Hypothesis paper (Frankle & Carbin, 2019)."""

from __future__ import annotations

import math

from torch import nn


def lenet_300_100(input_shape: tuple[int, ...], num_classes: int, width: float = 1.0) -> nn.Module:
    """784-300-100-10 on MNIST; hidden sizes scale with `width`."""
    h1, h2 = max(1, round(300 * width)), max(1, round(100 * width))
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), h1),
        nn.ReLU(),
        nn.Linear(h1, h2),
        nn.ReLU(),
        nn.Linear(h2, num_classes),
    )
