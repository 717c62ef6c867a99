"""The in-memory dataset every trainer, finder, exporter and benchmark uses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from compress.data import checks
from compress.errors import DataError


@dataclass
class Dataset:
    """Train/validation/test splits as float32 tensors (N, C, H, W) or (N, D), int64 labels."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    notes: list[str] = field(default_factory=list)  # fallbacks taken on load (see compress.data.checks)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def split(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        """`train`, `val` or `test` as (x, y)."""
        return getattr(self, f"x_{which}"), getattr(self, f"y_{which}")

    def describe(self) -> dict:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "train": len(self.y_train),
            "val": len(self.y_val),
            "test": len(self.y_test),
            **({"notes": list(self.notes)} if self.notes else {}),
        }


def batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Index-batched iteration over in-memory tensors; shuffled when a generator is given."""
    n = len(y)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield x[idx], y[idx]


def from_arrays(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    val_size: int | float,
    seed: int = 0,
    num_classes: int | None = None,
) -> Dataset:
    """Check the arrays (compress.data.checks), standardize per channel with train statistics, carve a
    stratified validation split from train."""
    x_train, x_test = checks.inputs(name, "x_train", x_train), checks.inputs(name, "x_test", x_test)
    y_train = checks.labels(name, "y_train", y_train, len(x_train))
    y_test = checks.labels(name, "y_test", y_test, len(x_test))
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{name}: x_train samples have shape {x_train.shape[1:]} but x_test samples "
                        f"{x_test.shape[1:]}; both splits must hold samples of one shape.")
    classes = checks.classes(name, y_train, y_test, num_classes)
    n_val, notes = checks.validation_size(name, y_train, val_size)
    if n_val:
        from sklearn.model_selection import train_test_split  # lazy: sklearn costs seconds at CLI start-up

        x_train, x_val, y_train, y_val = train_test_split(
            x_train, y_train, test_size=n_val, stratify=y_train, random_state=seed
        )
    else:
        x_val, y_val = x_train[:0], y_train[:0]
    axes = (0,) if x_train.ndim == 2 else (0, 2, 3)
    mean = x_train.mean(axis=axes, keepdims=True)
    std = x_train.std(axis=axes, keepdims=True) + 1e-8
    t = lambda a: torch.from_numpy(np.ascontiguousarray((a - mean) / std, dtype=np.float32))  # noqa: E731
    xs = {k: t(a) for k, a in (("train", x_train), ("val", x_val), ("test", x_test))}
    for k, v in xs.items():
        if not bool(torch.isfinite(v).all()):
            raise DataError(f"{name}: x_{k} is not finite after standardization with the training mean and "
                            "std (values too large for float32); rescale the inputs.")
    return Dataset(
        name, xs["train"], torch.from_numpy(y_train), xs["val"], torch.from_numpy(y_val),
        xs["test"], torch.from_numpy(y_test), classes, notes,
    )
