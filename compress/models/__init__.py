"""Model registry. `build(spec)` makes a model sized to a dataset; prunable = conv and linear weights."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial

import torch
from torch import nn

from compress.catalog import INITS, MODELS, model_names
from compress.errors import ShapeMismatchError, UnknownNameError, UsageError
from compress.models.convnets import convnet
from compress.models.external import factory_model, torchvision_model
from compress.models.lenet import lenet_300_100
from compress.models.resnet import resnet
from compress.models.vgg import vgg

Builder = Callable[..., nn.Module]

_BUILDERS: dict[str, Builder] = {
    "lenet_300_100": lenet_300_100,
    **{n: partial(convnet, n) for n in ("conv2", "conv4", "conv6", "conv8")},
    **{n: partial(vgg, n) for n in ("vgg11", "vgg16", "vgg19")},
    **{n: partial(resnet, n) for n in ("resnet20", "resnet32")},
}
_REGISTRY: dict[str, tuple[Builder, str, str]] = {n: (_BUILDERS[n], init, desc) for n, (init, desc) in MODELS.items()}
PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild an architecture: stored in every ticket."""

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    width: float = 1.0
    init: str = "default"
    extra: dict = field(default_factory=dict)  # room for finders that change layers (binary, scored)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        return cls(**{**d, "input_shape": tuple(d["input_shape"])})


def names() -> dict[str, str]:
    """Model names with a one-line description (plus the tv: and module:factory forms)."""
    return model_names()


def _builder(name: str) -> tuple[Builder, str]:
    if name.startswith("tv:"):
        return partial(torchvision_model, name[3:]), "torch"
    if ":" in name:
        return partial(factory_model, name), "torch"
    if name not in _REGISTRY:
        raise UnknownNameError("model", name, names())
    builder, init, _ = _REGISTRY[name]
    return builder, init


def build(spec: ModelSpec, seed: int | None = None) -> nn.Module:
    """Build and initialize a model; with `seed`, initialization is reproducible."""
    if spec.width <= 0:
        raise UsageError(f"width must be > 0, got {spec.width}.")
    if spec.init not in INITS:
        raise UnknownNameError("init", spec.init, INITS)
    builder, default_init = _builder(spec.name)
    ctx = torch.random.fork_rng(devices=[]) if seed is not None else _null()
    with ctx:
        if seed is not None:
            torch.manual_seed(seed)
        model = builder(tuple(spec.input_shape), spec.num_classes, spec.width)
        initialize(model, default_init if spec.init == "default" else spec.init)
        if spec.extra.get("transforms"):
            from compress.models.transforms import apply

            model = apply(model, spec.extra["transforms"])
    return model


def initialize(model: nn.Module, scheme: str) -> None:
    """Re-initialize conv/linear weights (biases to zero) with `scheme`; `torch` keeps PyTorch's defaults."""
    if scheme == "torch":
        return
    init = {"xavier_normal": nn.init.xavier_normal_, "kaiming_normal": nn.init.kaiming_normal_}[scheme]
    for m in model.modules():
        if isinstance(m, PRUNABLE_TYPES):
            init(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def prunable(model: nn.Module) -> dict[str, nn.Parameter]:
    """state_dict name -> weight of every conv and linear layer, in module order."""
    return {f"{n}.weight" if n else "weight": m.weight
            for n, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)}


def output_layer(model: nn.Module) -> str:
    """The state_dict name of the last prunable weight: the output layer, pruned at half rate by default."""
    names_ = list(prunable(model))
    if not names_:
        raise UsageError(f"{type(model).__name__} has no conv or linear layer to prune.")
    return names_[-1]


def check_input(model: nn.Module, input_shape: tuple[int, ...], num_classes: int, model_name: str = "") -> None:
    """Run one sample through the model; a failure or a wrong output size becomes `ShapeMismatchError`."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *input_shape))
    except RuntimeError as e:
        raise ShapeMismatchError(
            f"model {model_name or type(model).__name__} cannot take the dataset's samples of shape "
            f"{tuple(input_shape)}: {str(e).splitlines()[0]}"
        ) from e
    finally:
        model.train(was_training)
    if out.ndim != 2 or out.shape[1] != num_classes:
        raise ShapeMismatchError(f"model {model_name or type(model).__name__} outputs shape {tuple(out.shape[1:])} "
                                 f"for inputs {tuple(input_shape)}; the dataset has {num_classes} classes.")


def count(model: nn.Module) -> dict[str, int]:
    weights = prunable(model)
    return {"parameters": sum(p.numel() for p in model.parameters()),
            "prunable": sum(math.prod(w.shape) for w in weights.values())}


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


__all__ = ["ModelSpec", "build", "check_input", "count", "initialize", "names", "output_layer", "prunable"]
