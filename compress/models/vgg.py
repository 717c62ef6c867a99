"""VGG-11/16/19 with BatchNorm, CIFAR variant (one 512->classes linear layer), as in the GraSP paper."""

from __future__ import annotations

from torch import nn

_CFG = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def vgg(name: str, input_shape: tuple[int, ...], num_classes: int, width: float = 1.0) -> nn.Module:
    c = input_shape[0]
    layers: list[nn.Module] = []
    for v in _CFG[name]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, ceil_mode=True))  # ceil: 28x28 inputs survive five pools
        else:
            out = max(1, round(v * width))
            layers += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            c = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)
