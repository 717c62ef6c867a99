"""Every dataset source is checked on load: each bad array is one `DataError` naming the array and the problem."""

import numpy as np
import pytest

from compress import data
from compress.data.dataset import from_arrays
from compress.errors import DataError

RNG = np.random.default_rng(0)


def _good(n_train: int = 40, n_test: int = 20, classes: int = 4) -> dict[str, np.ndarray]:
    return {"x_train": RNG.normal(size=(n_train, 5)).astype(np.float32), "y_train": np.arange(n_train) % classes,
            "x_test": RNG.normal(size=(n_test, 5)).astype(np.float32), "y_test": np.arange(n_test) % classes}


def _with_nan(shape: tuple[int, ...], at: tuple[int, ...], value: float = np.nan, dtype=np.float32) -> np.ndarray:
    x = RNG.normal(size=shape).astype(dtype)
    x[at] = value
    return x


def _nan_feature() -> np.ndarray:  # the case: NaN in 10% of one feature
    x = RNG.normal(size=(40, 5)).astype(np.float32)
    x[::10, 3] = np.nan
    return x


CASES = {
    # name: (changes to the good arrays, every fragment the message must hold)
    "nan_in_x_train": ({"x_train": _with_nan((40, 5), (3, 2))}, ["x_train", "1 non-finite value", "(3, 2)"]),
    "nan_in_10pct_of_a_feature": ({"x_train": _nan_feature()}, ["x_train", "4 non-finite values", "(0, 3)"]),
    "inf_in_x_test": ({"x_test": _with_nan((20, 5), (7, 0), np.inf)}, ["x_test", "1 non-finite", "sample 7"]),
    "beyond_float32": ({"x_train": _with_nan((40, 5), (0, 1), 1e39, np.float64)}, ["x_train", "float32's range"]),
    "negative_label": ({"y_train": np.r_[np.arange(39) % 4, -3]}, ["y_train", "negative label -3", "index 39"]),
    "test_label_unseen": ({"y_test": np.r_[np.arange(19) % 4, 7]}, ["y_test", "label 7", "never occurs in y_train",
                                                                      "0, 1, 2, 3"]),
    "single_class": ({"y_train": np.zeros(40, int), "y_test": np.zeros(20, int)}, ["single class", "at least two"]),
    "one_sample_class": ({"y_train": np.r_[np.arange(39) % 3, 3], "y_test": np.arange(20) % 3},
                         ["class 3", "single training sample", "at least 2 per class"]),
    "empty_x_train": ({"x_train": np.zeros((0, 5), np.float32), "y_train": np.zeros(0, int)}, ["x_train", "empty"]),
    "empty_x_test": ({"x_test": np.zeros((0, 5), np.float32), "y_test": np.zeros(0, int)}, ["x_test", "empty"]),
    "object_x": ({"x_train": np.array([[1, 2]] * 40, dtype=object)}, ["x_train", "object array", "never loads"]),
    "text_labels": ({"y_train": np.array(["a", "b"] * 20)}, ["y_train", "text", "integer class indices"]),
    "float_labels": ({"y_train": (np.arange(40) % 4).astype(float)}, ["y_train", "float64", "y.astype(int)"]),
    "one_hot_labels": ({"y_train": np.eye(4)[np.arange(40) % 4]}, ["y_train", "(40, 4)", "one-hot"]),
    "length_mismatch": ({"y_train": np.arange(39) % 4}, ["x_train has 40 samples", "y_train has 39"]),
    "rank_5": ({"x_train": np.zeros((40, 1, 1, 1, 5))}, ["x_train", "5 dimensions"]),
    "rank_1": ({"x_test": np.zeros(20)}, ["x_test", "1 dimensions"]),
    "sample_shapes_differ": ({"x_test": RNG.normal(size=(20, 6))}, ["x_train samples", "x_test"]),
    "complex_inputs": ({"x_test": np.zeros((20, 5), np.complex64)}, ["x_test", "complex"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_npz_is_one_clear_data_error(tmp_path, case):
    changes, fragments = CASES[case]
    path = tmp_path / f"{case}.npz"
    np.savez(path, **{**_good(), **changes})
    before = path.read_bytes()
    with pytest.raises(DataError) as err:
        data.get(f"npz:{path}")
    msg = str(err.value)
    assert all(f in msg for f in fragments), msg
    assert "\n" not in msg and str(path) in msg  # one paragraph that names the file
    assert path.read_bytes() == before


def test_too_small_validation_split_takes_the_stated_fallback(tmp_path):
    """12 samples, 4 classes, val 10% = 2 < 4 classes: the split grows to one sample per class and says so."""
    path = tmp_path / "small.npz"
    arrays = _good(12, 8)
    np.savez(path, **arrays)
    d = data.get(f"npz:{path}")
    assert len(d.y_val) == 4 and sorted(d.y_val.tolist()) == [0, 1, 2, 3] and len(d.y_train) == 8
    assert d.notes == ["validation split enlarged from 2 to 4 samples (one per class) so that it can be stratified"]
    assert d.describe()["notes"] == d.notes


def test_validation_split_that_starves_training_is_refused():
    a = _good(12, 8)
    with pytest.raises(DataError, match=r"validation split of 10 of the 12 .*\(at most 8\)"):
        from_arrays("mine", a["x_train"], a["y_train"], a["x_test"], a["y_test"], 10)


def test_given_class_count_bounds_the_labels():
    """torchvision sets and the bundled ones pass their class count: a label beyond it is refused."""
    a = _good()
    y = a["y_train"].copy()
    y[5] = 10
    with pytest.raises(DataError, match="label 10 but the dataset has 10 classes; labels must be in 0..9"):
        from_arrays("cifar10", a["x_train"], y, a["x_test"], a["y_test"], 0, 0, 10)


def test_num_classes_comes_from_training_labels_only():
    a = _good()
    d = from_arrays("mine", a["x_train"], a["y_train"], a["x_test"], a["y_test"] % 2, 0.1)
    assert d.num_classes == 4  # y_test's max (1) does not shrink it, and never grows it


@pytest.mark.parametrize("name", ["digits", "mnist5k"])
def test_bundled_sets_pass_the_checks_unchanged(name):
    d = data.get(name)
    assert d.notes == [] and d.num_classes == 10 and bool(d.x_train.isfinite().all())
    assert set(d.y_test.unique().tolist()) <= set(d.y_train.unique().tolist())
