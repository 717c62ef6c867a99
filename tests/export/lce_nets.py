"""Tiny binary nets for the LCE tests, usable as `--model tests.export.lce_nets:NAME` factories in tickets.

BatchNorm/Hardtanh before binary activations (not ReLU, whose output always signs to +1), channel counts in
multiples of 32 so bit-packing wastes nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from compress.binarize import BinaryConv2d, BinaryLinear


def binary_net(input_shape: tuple[int, ...], num_classes: int, width: float = 1.0, act: str = "binary") -> nn.Module:
    """conv(float) -> bconv(pad 1) -> pool -> bconv(stride 2, pad 1) -> flatten -> blinear -> linear(float)."""
    b = act == "binary"
    c, h, w = input_shape
    side = ((h // 2) + 1) // 2
    return nn.Sequential(
        nn.Conv2d(c, 32, 3, padding=1), nn.BatchNorm2d(32), nn.Hardtanh(),
        BinaryConv2d(32, 32, 3, padding=1, binary_act=b), nn.BatchNorm2d(32), nn.Hardtanh(), nn.MaxPool2d(2),
        BinaryConv2d(32, 32, 3, stride=2, padding=1, binary_act=b, scale="layer"), nn.BatchNorm2d(32),
        nn.Flatten(), BinaryLinear(32 * side * side, 64, binary_act=b), nn.BatchNorm1d(64), nn.Hardtanh(),
        nn.Linear(64, num_classes))


def float_act_net(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The same layers with binary weights but float activations (MPT-1/32)."""
    return binary_net(input_shape, num_classes, act="float")


def prune_every_third(model: nn.Module) -> nn.Module:
    """Prune (keep=False) every third input column of each binary layer: ternary weights, exactly 0."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (BinaryConv2d, BinaryLinear)):
                m.keep[:, ::3] = False
                m.weight.mul_(m.keep)
    return model


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics, so the folded multipliers and biases are really exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) - 0.5)
    return model


class ResidualBinaryNet(nn.Module):
    """Two residual blocks (identity shortcut; strided 1x1 conv shortcut) of binary convs, float stem and head;
    Hardtanh after each add, and torch.flatten in the forward, so the LCE export must follow the graph."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, act: str = "binary") -> None:
        super().__init__()
        b = act == "binary"
        self.stem = nn.Sequential(nn.Conv2d(input_shape[0], 32, 3, padding=1), nn.BatchNorm2d(32), nn.Hardtanh())
        self.conv1, self.bn1 = BinaryConv2d(32, 32, 3, padding=1, binary_act=b), nn.BatchNorm2d(32)
        self.conv2, self.bn2 = BinaryConv2d(32, 32, 3, stride=2, padding=1, binary_act=b), nn.BatchNorm2d(32)
        self.down = nn.Sequential(nn.Conv2d(32, 32, 1, stride=2, bias=False), nn.BatchNorm2d(32))
        self.act = nn.Hardtanh()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.act(self.bn1(self.conv1(x)) + x)
        x = self.act(self.bn2(self.conv2(x)) + self.down(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def residual_net(input_shape: tuple[int, ...], num_classes: int, width: float = 1.0) -> nn.Module:
    return ResidualBinaryNet(input_shape, num_classes)
