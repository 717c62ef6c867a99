"""Dataset registry: `get(name)` loads a dataset by name; `names()` lists them."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from compress.catalog import DATASETS, dataset_names
from compress.data.builtin import digits, mnist5k
from compress.data.dataset import Dataset, batches
from compress.data.files import EXPECTED_FILES, npz, torchvision_set
from compress.errors import UnknownNameError

_REGISTRY: dict[str, tuple[Callable[..., Dataset], str]] = {
    "mnist5k": (mnist5k, DATASETS["mnist5k"]), "digits": (digits, DATASETS["digits"]),
    **{n: (partial(torchvision_set, n), DATASETS[n]) for n in EXPECTED_FILES},
}

_CACHE: dict[tuple, Dataset] = {}


def names() -> dict[str, str]:
    """Dataset names with a one-line description (plus the `npz:PATH` form)."""
    return dataset_names()


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
