"""User models for the bad-input tests (`--model tests.pipelines.user_models:NAME`)."""

from __future__ import annotations

from torch import nn


def broken(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    raise ValueError("this factory cannot build anything")


class _TrainModeBomb(nn.Module):
    """Fine in eval mode (so shape checks pass), a plain bug once training starts."""

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(features, num_classes)

    def forward(self, x):
        if self.training:
            raise ZeroDivisionError("a bug in the user's forward")
        return self.fc(x.flatten(1))


def bomb(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    size = 1
    for d in input_shape:
        size *= d
    return _TrainModeBomb(size, num_classes)


def small(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    size = 1
    for d in input_shape:
        size *= d
    return nn.Sequential(nn.Flatten(), nn.Linear(size, 16), nn.ReLU(), nn.Linear(16, num_classes))
