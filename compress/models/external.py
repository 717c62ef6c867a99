"""Models that come from elsewhere: `tv:<name>` (any torchvision classifier) and `package.module:factory`."""

from __future__ import annotations

import importlib
import inspect

from torch import nn

from compress.errors import UnknownNameError, UsageError


def torchvision_model(name: str, input_shape: tuple[int, ...], num_classes: int, width: float = 1.0) -> nn.Module:
    """A torchvision classifier built with random weights (nothing is downloaded)."""
    import torchvision

    valid = torchvision.models.list_models(module=torchvision.models)
    if name not in valid:
        raise UnknownNameError("torchvision model", name, valid, "Use them as tv:<name>.")
    if width != 1.0:
        raise UsageError(f"tv:{name} has no width multiplier; pass --width 1.")
    return torchvision.models.get_model(name, weights=None, num_classes=num_classes)


def factory_model(ref: str, input_shape: tuple[int, ...], num_classes: int, width: float = 1.0) -> nn.Module:
    """Call a user's `package.module:factory`, passing only the arguments it accepts."""
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise UsageError(f"cannot import '{module_name}' for model '{ref}': {e}. The module must be importable "
                         "(installed, or on PYTHONPATH).") from e
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UsageError(f"'{module_name}' has no callable '{attr}' (from model '{ref}').")
    offered = {"num_classes": num_classes, "input_shape": tuple(input_shape), "width": width}
    params = inspect.signature(factory).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
    model = factory(**{k: v for k, v in offered.items() if takes_all or k in params})
    if not isinstance(model, nn.Module):
        raise UsageError(f"'{ref}' returned {type(model).__name__}, not a torch.nn.Module.")
    return model
