"""Strict JSON (no NaN tokens: null plus a note) and file modes that follow the umask."""

import json
import math
import os
import stat

import numpy as np
import pytest
import torch

from compress.io import NONFINITE_KEY, atomic_write_bytes, load_json, save_json, save_tensors


def test_non_finite_numbers_become_null_and_are_listed(tmp_path):
    obj = {"meta": {"metrics": {"val_loss": float("nan"), "test_acc": 0.25, "wall_s": np.float32(np.inf)}},
           "curve": [1.0, -math.inf, torch.tensor(float("nan"))], "arr": np.array([0.5, np.nan]), "ok": 3}
    path = save_json(tmp_path / "ticket.json", obj)
    strict = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON token {c}"))
    assert strict["meta"]["metrics"] == {"val_loss": None, "test_acc": 0.25, "wall_s": None}
    assert strict["curve"] == [1.0, None, None] and strict["arr"] == [0.5, None] and strict["ok"] == 3
    assert strict[NONFINITE_KEY] == {"meta.metrics.val_loss": "NaN", "meta.metrics.wall_s": "Infinity",
                                     "curve[1]": "-Infinity", "curve[2]": "NaN", "arr[1]": "NaN"}


def test_finite_json_is_unchanged(tmp_path):
    obj = {"x": 1.5, "t": (1, 2), "s": "NaN is a word here", "b": True, "n": None}
    save_json(tmp_path / "a.json", obj)
    assert load_json(tmp_path / "a.json") == {"x": 1.5, "t": [1, 2], "s": "NaN is a word here", "b": True, "n": None}


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_keep_the_umask_mode(tmp_path, umask, expected):
    """Before: every file written through atomic_write_bytes was 0600 (mkstemp's mode), whatever the umask."""
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        save_tensors(tmp_path / "w.safetensors", {"w": torch.ones(2)})
        save_json(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(old)
    assert {stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {expected}


def test_umask_is_left_alone(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "a", b"1")
        save_tensors(tmp_path / "b", {"w": torch.zeros(1)})
        assert os.umask(0o027) == 0o027
        assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o640
    finally:
        os.umask(old)
