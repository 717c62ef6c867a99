"""Seeded, bounded fuzzing of the artifact loaders (`.onnx` through ONNX Runtime, `.tflite` through the file check
and the LCE runner): truncation, byte flips, wrong dtype/shape, NaN weights give a `LotteryError` or a valid
result with finite outputs, never another exception and never a crash of this process."""

import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compress.errors import LotteryError
from tests import fuzzing
from tests.fuzzing import FUZZ

byte_damage = fuzzing.byte_damage("truncate", "flip", "nan")


# --- ONNX ---------------------------------------------------------------------------------------------------------

needs_ort = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None or
                               importlib.util.find_spec("onnx") is None, reason="onnx extra not installed")
X = np.random.default_rng(1).normal(size=(6, 1, 4, 4)).astype(np.float32)
Y = np.arange(6) % 4


def _onnx_model(kind: str = "", i: int = 0):
    """Flatten -> Gemm, 16 -> 4 classes, with `kind` of structural damage to its initializers."""
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    if kind == "nan":
        w.reshape(-1)[i % w.size] = np.nan
    inits = [numpy_helper.from_array(w if kind != "shape" else w[: 1 + i % 15], "W"),
             numpy_helper.from_array(np.zeros(4, np.float32), "B")]
    if kind == "dtype":
        inits[0].data_type = [TensorProto.DOUBLE, TensorProto.INT8, TensorProto.STRING, TensorProto.FLOAT16][i % 4]
    if kind == "drop":
        inits = inits[1:]
    shape = ["N", 1, 4, 4] if kind != "rank" else ["N", 16]
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "W", "B"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model.SerializeToString()


def _evaluate_onnx(data: bytes) -> None:
    from deploy_targets.onnxruntime import OnnxRuntimeTarget

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.onnx"
        path.write_bytes(data)
        try:
            target = OnnxRuntimeTarget(threads=1)
            target.metadata(path)
            out = target.evaluate(path, X, Y)
            assert np.isfinite(out["logits"]).all() and out["logits"].shape == (6, 4)
        except LotteryError:
            pass


@needs_ort
def test_the_undamaged_onnx_model_runs():
    from deploy_targets.onnxruntime import OnnxRuntimeTarget

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "m.onnx").write_bytes(_onnx_model())
        assert OnnxRuntimeTarget(threads=1).evaluate(Path(d) / "m.onnx", X, Y)["logits"].shape == (6, 4)


@needs_ort
@settings(FUZZ, max_examples=60)
@given(damage=byte_damage)
def test_onnx_bytes(damage):
    _evaluate_onnx(fuzzing.damage(_onnx_model(), damage))


@needs_ort
@settings(FUZZ, max_examples=30)
@given(kind=st.sampled_from(["nan", "dtype", "shape", "drop", "rank"]), i=st.integers(0, 1000))
def test_onnx_initializers_of_the_wrong_kind(kind, i):
    from deploy_targets.onnxruntime import OnnxRuntimeTarget

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.onnx"
        path.write_bytes(_onnx_model(kind, i))
        with pytest.raises(LotteryError):  # each of these is broken: none may pass as a result
            OnnxRuntimeTarget(threads=1).evaluate(path, X, Y)


# --- TFLite -------------------------------------------------------------------------------------------------------

needs_lce = pytest.mark.skipif(importlib.util.find_spec("larq_compute_engine") is None,
                               reason="larq-compute-engine (edge extra) not installed")


@needs_lce
@settings(FUZZ, max_examples=80)
@given(damage=byte_damage)
def test_tflite_file_check(tflite, damage):
    from deploy_targets.tflite_check import check_tflite

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.tflite"
        path.write_bytes(fuzzing.damage(tflite.read_bytes(), damage))
        try:
            check_tflite(path)
        except LotteryError:
            pass


@needs_lce
@settings(FUZZ, max_examples=12)
@given(damage=byte_damage)
def test_tflite_through_the_edge_runner(tflite, damage):
    """The whole local path (check, runner child, output parsing): a crash of the runner is an error here."""
    from deploy_targets.arm_lce import LceTarget

    x = np.random.default_rng(0).standard_normal((4, 8, 8, 1)).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.tflite"
        path.write_bytes(fuzzing.damage(tflite.read_bytes(), damage))
        try:
            out = LceTarget(iters=1, warmup=0, work_dir=d, timeout_s=120).run(path, x, np.arange(4))
            assert np.isfinite(out["logits"]).all()
        except LotteryError:
            pass
        assert not list(Path(d).glob("lottery-edge-*"))
