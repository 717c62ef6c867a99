"""Conv-2/4/6 (Frankle & Carbin, 2019) and Conv-8 (Ramanujan et al., 2020; used by biprop/MPT).

VGG-like: pairs of 3x3 convs (64, 128, 256, 512 channels) each followed by 2x2 max-pooling, then
two hidden fully connected layers of 256 and the output layer. `width` scales every hidden width.
The first FC layer's size follows the dataset's input (28x28 MNIST: 7x7 after Conv-4's two pools).
"""

from __future__ import annotations

from torch import nn

_PAIRS = {"conv2": 1, "conv4": 2, "conv6": 3, "conv8": 4}


def _scaled(c: int, width: float) -> int:
    return max(1, round(c * width))


def convnet(name: str, input_shape: tuple[int, ...], num_classes: int, width: float = 1.0) -> nn.Module:
    if len(input_shape) != 3:
        from compress.errors import ShapeMismatchError

        raise ShapeMismatchError(f"{name} needs image input (C, H, W); the dataset gives samples of shape "
                                 f"{tuple(input_shape)}.")
    c, h, w = input_shape
    layers: list[nn.Module] = []
    for i in range(_PAIRS[name]):
        out = _scaled(64 * 2**i, width)
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(), nn.Conv2d(out, out, 3, padding=1), nn.ReLU(),
                   nn.MaxPool2d(2)]
        c, h, w = out, h // 2, w // 2
    if h < 1 or w < 1:
        from compress.errors import ShapeMismatchError

        raise ShapeMismatchError(f"{name} pools {_PAIRS[name]} times; input {tuple(input_shape)} is too small "
                                 f"(needs at least {2 ** _PAIRS[name]}x{2 ** _PAIRS[name]}).")
    hidden = _scaled(256, width)
    layers += [nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
               nn.Linear(hidden, num_classes)]
    return nn.Sequential(*layers)
