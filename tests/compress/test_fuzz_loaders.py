"""Seeded, bounded fuzzing of the torch-side loaders: a corrupt npz, safetensors or ticket.json file gives a
`LotteryError` (or, for a change that leaves a valid file, a result that passes the checks), never another
exception. Corruptions: truncation, byte flips, arrays or tensors of the wrong dtype or shape, NaN/inf."""

import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compress import models
from compress.data.files import npz
from compress.errors import LotteryError, RunDirError
from compress.io import load_tensors, save_tensors
from compress.mask import Mask
from compress.ticket import TICKET_FILE, Ticket
from tests import fuzzing
from tests.fuzzing import FUZZ as SHARED_FUZZ

FUZZ = settings(SHARED_FUZZ, max_examples=40)
KEYS = ("x_train", "y_train", "x_test", "y_test")
TICKET_FILES = ("init.safetensors", "mask.safetensors", "final.safetensors")


def _npz_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"x_train": rng.normal(size=(40, 1, 4, 4)).astype(np.float32), "y_train": np.arange(40) % 4,
            "x_test": rng.normal(size=(12, 1, 4, 4)).astype(np.float32), "y_test": np.arange(12) % 4}


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


byte_damage = fuzzing.byte_damage("truncate", "flip")


# An array-level corruption: (key, kind, index fraction)
array_damage = st.tuples(st.sampled_from(KEYS), st.sampled_from(["nan", "inf", "dtype", "shape", "empty", "negative"]),
                         st.floats(0, 1, exclude_max=True))


def _corrupt_array(arrays: dict[str, np.ndarray], damage: tuple[str, str, float]) -> dict[str, np.ndarray]:
    key, kind, where = damage
    out = {k: v.copy() for k, v in arrays.items()}
    a = out[key]
    flat = a.reshape(-1)
    i = int(where * flat.size)
    if kind in ("nan", "inf"):
        out[key] = flat.astype(np.float64)
        out[key][i] = np.nan if kind == "nan" else -np.inf
        out[key] = out[key].reshape(a.shape)
    elif kind == "dtype":
        out[key] = a.astype([np.complex64, np.bool_, np.float16, "U3"][i % 4])
    elif kind == "shape":
        out[key] = flat[: max(1, flat.size - 1 - i)].reshape(-1)
    elif kind == "empty":
        out[key] = a[:0]
    else:
        out[key] = a.astype(np.int64) - (i + 1)
    return out


def _check_loaded(ds) -> None:
    assert bool(torch.isfinite(ds.x_train).all()) and bool(torch.isfinite(ds.x_test).all())
    assert int(ds.y_train.min()) >= 0 and int(ds.y_train.max()) < ds.num_classes
    assert set(ds.y_test.tolist()) <= set(ds.y_train.tolist()) | set(ds.y_val.tolist())


@FUZZ
@given(damage=byte_damage)
def test_npz_bytes(damage):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "data.npz"
        path.write_bytes(fuzzing.damage(_npz_bytes(_npz_arrays()), damage))
        try:
            _check_loaded(npz(str(path)))
        except LotteryError:
            pass


@FUZZ
@given(damage=array_damage)
def test_npz_arrays(damage):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "data.npz"
        path.write_bytes(_npz_bytes(_corrupt_array(_npz_arrays(), damage)))
        try:
            _check_loaded(npz(str(path)))
        except LotteryError:
            pass


@pytest.fixture(scope="module")
def ticket_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ticket") / "level-1"
    model = models.build(models.ModelSpec("lenet_300_100", (1, 4, 4), 4, 0.05), seed=0)
    mask = Mask({k: torch.rand_like(v) > 0.5 for k, v in models.prunable(model).items()})
    Ticket(models.ModelSpec("lenet_300_100", (1, 4, 4), 4, 0.05), model.state_dict(), mask,
           {k: v + 0.01 for k, v in model.state_dict().items()}).save(d)
    return d


def _load_and_build(d: Path) -> None:
    ticket = Ticket.load(d)
    ticket.model("final")
    ticket.model("init")


def _copy(src: Path, dst: Path, with_digests: bool) -> Path:
    shutil.copytree(src, dst)
    if not with_digests:
        info = json.loads((dst / TICKET_FILE).read_text())
        info.pop("files")
        (dst / TICKET_FILE).write_text(json.dumps(info))
    return dst


@FUZZ
@given(name=st.sampled_from(TICKET_FILES), damage=byte_damage, with_digests=st.booleans())
def test_ticket_safetensors_bytes(ticket_dir, name, damage, with_digests):
    with tempfile.TemporaryDirectory() as tmp:
        d = _copy(ticket_dir, Path(tmp) / "t", with_digests)
        original = (d / name).read_bytes()
        (d / name).write_bytes(fuzzing.damage(original, damage))
        changed = (d / name).read_bytes() != original
        try:
            _load_and_build(d)
            assert not (with_digests and changed), "a changed file passed its recorded digest"
        except LotteryError:
            pass
        try:
            load_tensors(d / name) if name != "mask.safetensors" else Mask.load(d / name)
        except LotteryError:
            pass


tensor_damage = st.tuples(st.sampled_from(TICKET_FILES), st.sampled_from(["nan", "dtype", "shape", "drop", "extra"]),
                          st.integers(0, 10_000))


@FUZZ
@given(damage=tensor_damage)
def test_ticket_tensors_of_the_wrong_kind(ticket_dir, damage):
    """Valid safetensors files with wrong contents, and no digests to catch them: the checks must."""
    name, kind, i = damage
    with tempfile.TemporaryDirectory() as tmp:
        d = _copy(ticket_dir, Path(tmp) / "t", with_digests=False)
        tensors = load_tensors(d / name)
        key = sorted(tensors)[i % len(tensors)]
        t = tensors[key]
        if kind == "nan":
            t = t.float().clone().reshape(-1)
            t[i % t.numel()] = float("nan")
            tensors[key] = t.reshape(tensors[key].shape)
        elif kind == "dtype":
            tensors[key] = t.to([torch.float64, torch.int32, torch.float16, torch.bool][i % 4])
        elif kind == "shape":
            tensors[key] = t.reshape(-1)[: max(1, t.numel() - 1 - i % t.numel())].clone()
        elif kind == "drop":
            tensors.pop(key)
        else:
            tensors["extra.weight"] = torch.zeros(3)
        save_tensors(d / name, tensors)
        try:
            _load_and_build(d)
            # what stays valid: a weight cast to another dtype (load_state_dict casts it back), or a mask without
            # an entry (that layer is dense: MPT stores masks of its scored layers only)
            benign = (kind == "dtype" and name != "mask.safetensors") or (kind == "drop" and name == "mask.safetensors")
            assert benign, f"{kind} in {name} was accepted"
        except LotteryError:
            pass


@FUZZ
@given(damage=byte_damage)
def test_ticket_json_bytes(ticket_dir, damage):
    with tempfile.TemporaryDirectory() as tmp:
        d = _copy(ticket_dir, Path(tmp) / "t", with_digests=True)
        (d / TICKET_FILE).write_bytes(fuzzing.damage((d / TICKET_FILE).read_bytes(), damage))
        try:
            _load_and_build(d)
        except LotteryError:
            pass


def test_a_damaged_digest_record_is_an_error_not_a_crash(ticket_dir, tmp_path):
    d = _copy(ticket_dir, tmp_path / "t", with_digests=True)
    info = json.loads((d / TICKET_FILE).read_text())
    info["files"]["final.safetensors"] = "abc"
    (d / TICKET_FILE).write_text(json.dumps(info))
    with pytest.raises(RunDirError, match="malformed digest record for final.safetensors"):
        Ticket.load(d)
