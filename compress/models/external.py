"""Models that come from elsewhere: `tv:<name>` (any torchvision classifier) and `package.module:factory`."""

from __future__ import annotations

import contextlib
import importlib
import inspect
from collections.abc import Iterator

from torch import nn

from compress.errors import ShapeMismatchError, UnknownNameError, UsageError


def torchvision_model(name: str, input_shape: tuple[int, ...], num_classes: int, width: float = 1.0) -> nn.Module:
    """A torchvision classifier built with random weights (nothing is downloaded)."""
    import torchvision

    valid = torchvision.models.list_models(module=torchvision.models)
    if name not in valid:
        raise UnknownNameError("torchvision model", name, valid, "Use them as tv:<name>.")
    if width != 1.0:
        raise UsageError(f"tv:{name} has no width multiplier; pass --width 1.")
    return torchvision.models.get_model(name, weights=None, num_classes=num_classes)


# Importing a module named inside a run directory or artifact runs that module's code, like unpickling. While a
# command or pipeline runs (`restricted`), only the model the user named (command line, their spec) is imported,
# or everything under `--trust-code`; plain library calls (the caller's own specs) are not restricted.
_POLICY: list[tuple[bool, frozenset[str]]] = [(True, frozenset())]  # (trust everything, trusted refs)


@contextlib.contextmanager
def restricted(trusted: set[str] | frozenset[str] = frozenset(), trust_all: bool = False) -> Iterator[None]:
    """Within the block, `module:factory` models are imported only if in `trusted` (or `trust_all`)."""
    _POLICY.append((trust_all, frozenset(r for r in trusted if r and ":" in r and not r.startswith("tv:"))))
    try:
        yield
    finally:
        _POLICY.pop()


def _check_trusted(ref: str) -> None:
    trust_all, trusted = _POLICY[-1]
    if not (trust_all or ref in trusted):
        raise UsageError(f"this model is code from '{ref}': opening it imports and runs that module. It was named "
                         "inside a run directory or artifact, not by you on the command line. Pass --trust-code if "
                         "you trust where it came from (trust_code=True in the Python API).")


def factory_model(ref: str, input_shape: tuple[int, ...], num_classes: int, width: float = 1.0) -> nn.Module:
    """Call a user's `package.module:factory`, passing only the arguments it accepts."""
    _check_trusted(ref)
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - ImportError, or anything the module's top level raises
        raise UsageError(f"cannot import '{module_name}' for model '{ref}': {type(e).__name__}: {_first_line(e)}. "
                         "The module must be importable (installed, or on PYTHONPATH).") from e
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UsageError(f"'{module_name}' has no callable '{attr}' (from model '{ref}').")
    offered = {"num_classes": num_classes, "input_shape": tuple(input_shape), "width": width}
    try:
        params = dict(inspect.signature(factory).parameters)
    except (TypeError, ValueError):  # a C callable without a signature: offer everything
        params = None
    takes_all = params is None or any(p.kind is p.VAR_KEYWORD for p in params.values())
    given = {k: v for k, v in offered.items() if takes_all or k in (params or {})}
    try:
        model = factory(**given)
    except Exception as e:  # noqa: BLE001 - user code: any failure becomes one paragraph naming it
        args = ", ".join(f"{k}={v!r}" for k, v in given.items())
        raise UsageError(f"the model factory '{ref}' raised {type(e).__name__} when called as {attr}({args}): "
                         f"{_first_line(e)}. A factory must accept num_classes (and optionally input_shape, "
                         "width) and return a torch.nn.Module.") from e
    if not isinstance(model, nn.Module):
        raise UsageError(f"the model factory '{ref}' returned {type(model).__name__}, not a torch.nn.Module. A "
                         "factory must return the network itself (an nn.Module).")
    _check_output(model, ref, tuple(input_shape), num_classes)
    return model


def _check_output(model: nn.Module, ref: str, input_shape: tuple[int, ...], num_classes: int) -> None:
    """One forward on two zero samples: the factory's network must map them to (2, num_classes) logits."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *input_shape))
    except Exception as e:  # noqa: BLE001 - user code
        raise ShapeMismatchError(f"the network from model factory '{ref}' cannot take samples of shape "
                                 f"{input_shape}: {type(e).__name__}: {_first_line(e)}.") from e
    finally:
        model.train(was_training)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != (2, num_classes):
        raise ShapeMismatchError(f"the network from model factory '{ref}' outputs {shape} for 2 samples of shape "
                                 f"{input_shape}; it must output logits of shape (2, {num_classes}) (one score per "
                                 f"class of the dataset). Build its last layer from the num_classes argument.")


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0][:300].rstrip(".") if lines else "(no message)"
