"""Checks every dataset passes on load, whatever its source (bundled sets, torchvision files, `npz:PATH`).

A bad array is refused with a one-paragraph `DataError` naming the array, the problem and what is valid,
before it can turn into NaN weights or a model with the wrong number of classes. The stratified
validation split is checked too: every class needs two training samples (one may go to validation);
a split too small to hold one sample per class is enlarged to one per class (the stated fallback,
kept in `Dataset.notes`).
"""

from __future__ import annotations

import math

import numpy as np

from compress.errors import DataError


def inputs(source: str, key: str, x: np.ndarray) -> np.ndarray:
    """`x` as float32 of rank 2 (N, D) or 4 (N, C, H, W), non-empty and finite, or a `DataError`."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":  # object, strings, complex, dates, records
        raise DataError(f"{source}: {key} has dtype {x.dtype} ({_kind(x.dtype)}); inputs must be a numeric "
                        "array (float or integer), e.g. saved with np.savez from a float32 array.")
    if x.ndim not in (2, 4):
        raise DataError(f"{source}: {key} has shape {x.shape} ({x.ndim} dimensions); expected (N, D) or "
                        "(N, C, H, W) samples.")
    if x.shape[0] == 0 or math.prod(x.shape[1:]) == 0:
        raise DataError(f"{source}: {key} is empty (shape {x.shape}); it needs at least one sample with at "
                        "least one value.")
    with np.errstate(over="ignore"):  # too large for float32 becomes inf, reported just below
        x32 = x.astype(np.float32, copy=False)
    finite = np.isfinite(x32)
    if not finite.all():
        bad = int(finite.size - np.count_nonzero(finite))
        first = tuple(int(i) for i in np.unravel_index(int(np.argmin(finite)), x.shape))
        raise DataError(f"{source}: {key} holds {bad} non-finite value{'s' * (bad != 1)} (NaN, inf, or beyond "
                        f"float32's range), the first at index {first} (sample {first[0]}). Every input value must "
                        "be a finite number: fix or drop those samples.")
    return x32


def labels(source: str, key: str, y: np.ndarray, n: int) -> np.ndarray:
    """`y` as int64 of shape (n,), non-negative, or a `DataError` (a negative label is named with its index)."""
    y = np.asarray(y)
    if y.ndim > 1 and y.size != y.shape[0]:
        raise DataError(f"{source}: {key} has shape {y.shape}; labels must be one class index per sample, shape "
                        f"(N,){' (it looks one-hot: use y.argmax(1))' if y.ndim == 2 else ''}.")
    y = y.reshape(-1)
    if y.dtype.kind not in "iu":
        hint = " (whole numbers stored as floats: convert with y.astype(int))" if (
            y.dtype.kind == "f" and len(y) and np.isfinite(y).all() and (y == np.round(y)).all()) else ""
        raise DataError(f"{source}: {key} has dtype {y.dtype} ({_kind(y.dtype)}); labels must be integer class "
                        f"indices 0..C-1{hint}.")
    if len(y) != n:
        raise DataError(f"{source}: x_{key[2:]} has {n} samples but {key} has {len(y)} labels; they must match "
                        "one to one.")
    if len(y) and y.min() < 0:
        i = int(np.argmin(y))
        raise DataError(f"{source}: {key} holds the negative label {int(y[i])} (at index {i}); labels must be "
                        "class indices 0..C-1.")
    return y.astype(np.int64)


def classes(source: str, y_train: np.ndarray, y_test: np.ndarray, num_classes: int | None) -> int:
    """The number of classes C (given, else max(y_train) + 1); every label in [0, C), test classes seen in training."""
    present = np.unique(y_train)
    if len(present) < 2:
        raise DataError(f"{source}: y_train holds a single class ({int(present[0])}); a classifier needs at least "
                        "two classes to learn anything (a one-class model scores 100% trivially).")
    c = num_classes or int(present[-1]) + 1
    if y_train.max() >= c:
        raise DataError(f"{source}: y_train holds label {int(y_train.max())} but the dataset has {c} classes; "
                        f"labels must be in 0..{c - 1}.")
    unseen = np.setdiff1d(np.unique(y_test), present)
    if len(unseen):
        first = int(np.flatnonzero(np.isin(y_test, unseen))[0])
        raise DataError(f"{source}: y_test holds label{'s' * (len(unseen) > 1)} {_list(unseen)} (first at index "
                        f"{first}) that never occur{'s' * (len(unseen) == 1)} in y_train; a model trained on y_train "
                        f"cannot predict {'it' if len(unseen) == 1 else 'them'}. Valid test labels: the classes of "
                        f"y_train ({_list(present)}).")
    return c


def validation_size(source: str, y_train: np.ndarray, val_size: int | float) -> tuple[int, list[str]]:
    """Samples for the stratified validation split (as sklearn counts them) and notes on any fallback taken."""
    n = len(y_train)
    if not val_size:
        return 0, []
    if (isinstance(val_size, float) and not 0 < val_size < 1) or val_size < 0:
        raise DataError(f"{source}: validation size {val_size} is not valid: give a fraction in (0, 1), a sample "
                        "count, or 0 for no validation split.")
    wanted = math.ceil(val_size * n) if isinstance(val_size, float) else int(val_size)
    present, counts = np.unique(y_train, return_counts=True)
    few = present[counts < 2]
    if len(few):
        many = len(few) > 1
        raise DataError(f"{source}: class{'es' * many} {_list(few)} of y_train {'have' if many else 'has'} a single "
                        "training sample; the stratified validation split needs at least 2 per class "
                        "(one for training, one for validation). Add samples of those classes or drop them.")
    k = len(present)
    notes = []
    n_val = wanted
    if n_val < k:  # the fallback: one validation sample per class is the smallest stratified split
        notes.append(f"validation split enlarged from {wanted} to {k} samples (one per class) so that it can be "
                     "stratified")
        n_val = k
    if n - n_val < k:
        raise DataError(f"{source}: a validation split of {wanted} of the {n} training samples leaves fewer "
                        f"training samples than the {k} classes; use a smaller validation size (at most {n - k}).")
    return n_val, notes


def _kind(dtype: np.dtype) -> str:
    return {"O": "Python objects", "U": "text", "S": "bytes", "c": "complex numbers", "M": "dates",
            "m": "time spans", "V": "raw records", "b": "booleans", "f": "floats"}.get(dtype.kind, "integers")


def _list(values: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(int(v)) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")
