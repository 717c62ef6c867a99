"""Datasets read from the user's disk: torchvision's standard sets and `npz:PATH`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compress.data.dataset import Dataset, from_arrays
from compress.errors import DataError

# What torchvision expects under --data-root, so an offline user knows what to put where.
EXPECTED_FILES = {
    "mnist": ("MNIST/raw", ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                            "t10k-labels-idx1-ubyte"]),
    "fashion-mnist": ("FashionMNIST/raw", ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]),
    "cifar10": ("cifar-10-batches-py", ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                                        "data_batch_5", "test_batch", "batches.meta"]),
    "cifar100": ("cifar-100-python", ["train", "test", "meta"]),
}
_CLASSES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}


def torchvision_set(
    name: str, data_root: str | None = None, download: bool = False, val_size: int = 5000, **_: object
) -> Dataset:
    """Load a torchvision dataset fully into memory from `data_root` (download only when asked)."""
    import torchvision

    sub, files = EXPECTED_FILES[name]
    if data_root is None:
        raise DataError(
            f"dataset '{name}' is read from disk: pass --data-root DIR holding {sub}/ with {', '.join(files)} "
            "(or add --download on a machine with internet). Offline alternatives: mnist5k, digits."
        )
    root = Path(data_root).expanduser()
    cls = getattr(torchvision.datasets, _CLASSES[name])
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=download)
    except Exception as e:  # torchvision raises RuntimeError for missing files, URLError when offline
        missing = [f for f in files if not any((root / sub).glob(f + "*"))]
        raise DataError(
            f"cannot load '{name}' from {root}: {e}. Put these files in {root / sub}: "
            f"{', '.join(missing or files)} (gzipped .gz also accepted for MNIST-style sets), "
            "or pass --download when online."
        ) from e
    return from_arrays(name, _images(train.data), np.asarray(train.targets), _images(test.data),
                       np.asarray(test.targets), val_size, 0, len(train.classes))


def _images(data: object) -> np.ndarray:
    arr = np.asarray(data)
    if arr.ndim == 3:  # MNIST-style (N, H, W)
        return arr[:, None, :, :]
    return arr.transpose(0, 3, 1, 2)  # CIFAR (N, H, W, C) -> NCHW


def npz(path: str, val_size: float = 0.1, **_: object) -> Dataset:
    """A user's own data: an .npz with x_train, y_train, x_test, y_test (NCHW, NHWC, NHW or N x D)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"npz dataset file {p} does not exist. Give npz:PATH to a .npz with "
                        "x_train, y_train, x_test, y_test.")
    try:
        arrays = np.load(p, allow_pickle=False)
        keys = set(arrays.files)
    except Exception as e:
        raise DataError(f"{p} is not a readable .npz file ({e}).") from e
    need = ["x_train", "y_train", "x_test", "y_test"]
    with arrays:
        missing = [k for k in need if k not in keys]
        if missing:
            raise DataError(f"{p} lacks arrays {', '.join(missing)}; it has {', '.join(sorted(keys)) or 'none'}. "
                            f"Required: {', '.join(need)}.")
        loaded = {k: _array(arrays, k, p) for k in need}
    xs = [_to_nchw(loaded[k], k, p) for k in ("x_train", "x_test")]
    return from_arrays(f"npz:{p}", xs[0], loaded["y_train"], xs[1], loaded["y_test"], val_size, 0)


def _array(arrays: np.lib.npyio.NpzFile, key: str, p: Path) -> np.ndarray:
    """One array of the archive; pickled objects are never loaded (loading them can run code)."""
    try:
        return arrays[key]
    except ValueError as e:
        if "allow_pickle" not in str(e):
            raise DataError(f"{p}: {key} cannot be read ({str(e).splitlines()[0]}); the file is corrupt. Save it "
                            "again with np.savez.") from e
        raise DataError(f"{p}: {key} is an object array (pickled Python objects), which lottery never loads: "
                        "unpickling can run code. Save it as a numeric array (e.g. np.asarray(x, np.float32)).") from e
    except Exception as e:  # a truncated or corrupt member of the zip
        raise DataError(f"{p}: {key} cannot be read ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                        "the file is corrupt. Save it again with np.savez.") from e


def _to_nchw(x: np.ndarray, key: str, p: Path) -> np.ndarray:
    if x.dtype.kind not in "biuf":
        return x  # refused with its dtype by compress.data.checks
    if x.ndim == 2:
        return x
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        return x if x.shape[1] in (1, 3) or x.shape[-1] not in (1, 3) else x.transpose(0, 3, 1, 2)
    raise DataError(f"{p}: {key} has shape {x.shape} ({x.ndim} dimensions); expected 2 (N, D), 3 (N, H, W) or 4 "
                    "(NCHW/NHWC).")
