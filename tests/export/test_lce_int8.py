"""LCE export with int8 float layers: real conversions (one TensorFlow worker launch), verified against PyTorch."""

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from compress import models
from compress.binarize.layers import BINARY_TYPES, BinaryConv2d
from compress.errors import UsageError
from compress.mask import Mask
from compress.ticket import Ticket
from compress.train import TrainHparams, predict, train
from export.lce import export_lce, finish_job, prepare_job, run_worker
from export.lce_graph import describe
from export.lce_int8 import MIN_ELEMENTS, quantize_per_channel
from export.verify_lce import ExportVerificationError, verify
from tests.export.lce_nets import float_act_net, prune_every_third, randomize_bn

pytestmark = pytest.mark.skipif(__import__("importlib").util.find_spec("larq_compute_engine") is None,
                                reason="larq-compute-engine (edge extra) not installed")
SHAPE = (1, 8, 8)


def _conv_net(act: str = "binary") -> nn.Module:
    """Float 3x3 stem (288 weights: stays float32), two binary convs, a float head of 2,560 weights (int8)."""
    b = act == "binary"
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.Hardtanh(),
        BinaryConv2d(32, 32, 3, padding=1, binary_act=b), nn.BatchNorm2d(32), nn.Hardtanh(), nn.MaxPool2d(2),
        BinaryConv2d(32, 64, 3, stride=2, padding=1, binary_act=b), nn.BatchNorm2d(64), nn.Flatten(),
        nn.Linear(64 * 2 * 2, 10))


def _nets(digits) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    hp = TrainHparams(iterations=80, batch_size=64, lr=3e-3, eval_every=80)
    # LeNet-300-100 (width 0.5: 150-50) with its inner layer binarized, binary activations: the quickstart's shape
    lenet = models.build(models.ModelSpec("lenet_300_100", SHAPE, 10, 0.5, extra={"transforms": [
        {"name": "binarize", "act": "binary"}]}), seed=0)
    train(lenet, digits, hp)
    conv = randomize_bn(prune_every_third(_conv_net()))
    train(conv, digits, hp)
    prune_every_third(conv)
    mpt132 = randomize_bn(prune_every_third(float_act_net(SHAPE, 10)))  # MPT-1/32: float convs with +-alpha weights
    train(mpt132, digits, hp)
    prune_every_third(mpt132)
    return {"lenet": lenet.eval(), "conv": conv.eval(), "mpt132": mpt132.eval()}


@pytest.fixture(scope="module")
def exported(digits, tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets: one thread is as fast, and far faster on a shared, loaded CPU
    try:
        nets = _nets(digits)
    finally:
        torch.set_num_threads(threads)
    root = tmp_path_factory.mktemp("lce-int8")
    x, y = digits.split("test")
    jobs = {}
    for key, net in nets.items():
        for fl in ("float32", "int8") if key != "mpt132" else ("int8",):
            g = describe(net, SHAPE, float_layers=fl)
            jobs[key, fl] = (prepare_job(root / f"{key}-{fl}", g, x.numpy()), g)
    run_worker([j for j, _ in jobs.values()])
    reports = {k: finish_job(j, g, nets[k[0]], x, y, 0.99) for k, (j, g) in jobs.items()}
    return {"nets": nets, "jobs": jobs, "reports": reports, "x": x, "y": y}


def _int8_reference(net: nn.Module) -> nn.Module:
    """`net` with every float conv/linear weight rounded to the same per-output-channel int8 grid."""
    net = copy.deepcopy(net)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and not isinstance(m, BINARY_TYPES) \
                    and m.weight.numel() >= MIN_ELEMENTS:
                q, scale = quantize_per_channel(m.weight.numpy(), axis=0)
                shape = (-1,) + (1,) * (m.weight.ndim - 1)
                m.weight.copy_(torch.from_numpy(q.astype(np.float32) * scale.reshape(shape)))
    return net


@pytest.mark.parametrize("key", ["lenet", "conv"])
def test_int8_export_keeps_parity_and_stores_int8_weights(exported, key):
    r = exported["reports"][key, "int8"]
    assert r["agreement"] >= 0.99 and r["torch_test_acc"] > 0.5 and r["float_layers"] == "int8"
    floats = [row for row in r["layers"] if not row["bit_packed"]]
    large = [row for row in floats if row["weights"] >= MIN_ELEMENTS]
    assert large and r["ops"]["DEQUANTIZE"] == len(large)
    filters = {x["name"]: x["filters"] for x in exported["jobs"][key, "int8"][1].layers if x["op"] == "conv"}
    for row in large:  # read from the flatbuffer: INT8 filter bytes, one float32 scale + int64 zero point per channel
        assert row["int8"] and row["filter_type"] == "INT8" and row["weight_bits"] == 8 * row["weights"]
        assert row["scales"] == filters[row["layer"]] and row["scale_bits"] == row["scales"] * (32 + 64)
    for row in floats:
        if row["weights"] < MIN_ELEMENTS:  # TFLite's own threshold: tiny filters stay float32, and say so
            assert row["int8"] is False and row["filter_type"] == "FLOAT32" and row["bits_per_weight"] == 32.0
            assert "kept float32" in row["note"]
    assert r["float_layer_bits"] == sum(row["weight_bits"] + row["scale_bits"] for row in floats)
    assert r["binary_layer_bits"] == exported["reports"][key, "float32"]["binary_layer_bits"]  # bconvs untouched


@pytest.mark.parametrize("key", ["lenet", "conv"])
def test_int8_file_is_smaller_by_three_bytes_per_float_weight(exported, key):
    f32, i8 = exported["reports"][key, "float32"], exported["reports"][key, "int8"]
    saved = f32["tflite_bytes"] - i8["tflite_bytes"]
    weights = sum(row["weights"] for row in i8["layers"] if row.get("int8"))
    quant = sum(row["scale_bits"] for row in i8["layers"] if row.get("int8")) // 8
    # the float32 filters are gone from the file, not just shadowed; what is added is scales and op metadata
    assert 3 * weights - quant - 2048 <= saved <= 3 * weights
    assert f32["float_layers"] == "float32" and "DEQUANTIZE" not in f32["ops"]
    assert all(row["bits_per_weight"] == 32.0 for row in f32["layers"] if not row["bit_packed"])


@pytest.mark.parametrize("key", ["lenet", "conv"])
def test_interpreter_computes_the_network_with_the_stored_int8_weights(exported, key):
    """Per-channel dequantization really happens: the outputs equal PyTorch's with the same rounded weights
    (the float layers of >= 1,024 weights rounded, the smaller ones as they are)."""
    job = exported["jobs"][key, "int8"][0]
    lce = np.load(job / "lce_out.npy")
    net, x = exported["nets"][key], exported["x"]
    ref = predict(_int8_reference(net), x).numpy()
    exact = np.abs(lce - ref).max()
    assert exact < 1e-3 and (lce.argmax(1) == ref.argmax(1)).all()
    assert exported["reports"][key, "int8"]["max_abs_diff"] > 10 * exact  # vs the float network: rounding shows


def test_binary_weights_with_float_activations_are_exact_in_int8(exported):
    r = exported["reports"]["mpt132", "int8"]
    rows = {row["layer"]: row for row in r["layers"]}
    assert [rows[n]["int8"] for n in ("0", "3", "7", "10", "13")] == [False, True, True, True, False]
    assert not any(row["bit_packed"] for row in rows.values()) and r["torch_test_acc"] > 0.5
    assert r["agreement"] == 1.0 and r["max_abs_diff"] < 1e-3  # +-alpha per channel (0 where pruned): on the grid


def test_a_float_layer_left_in_float32_fails_int8_verification(exported):
    graph = exported["jobs"]["conv", "int8"][1]
    f32_ops = json.loads((exported["jobs"]["conv", "float32"][0] / "ops.json").read_text())
    out = predict(exported["nets"]["conv"], exported["x"]).numpy()
    with pytest.raises(ExportVerificationError,
                       match=r"stored as int8.*: 10 \(CONV_2D \(FLOAT32 filter\), 0 scales for 2560 weights\)\. "):
        verify(graph, f32_ops, out, out, exported["y"].numpy())


def test_worker_stays_torch_free_with_int8(exported):
    loaded = json.loads((exported["jobs"]["lenet", "int8"][0] / "modules.json").read_text())
    assert loaded["torch"] is False and loaded["larq_compute_engine"] is True


def test_unknown_float_layers_value_is_refused(tmp_path):
    with pytest.raises(UsageError, match="float_layers must be one of float32, int8, got 'int4'"):
        describe(_conv_net(), SHAPE, float_layers="int4")
    binary = {"transforms": [{"name": "binarize", "act": "binary"}]}
    spec = models.ModelSpec("lenet_300_100", SHAPE, 10, 0.25, extra=binary)
    model = models.build(spec, seed=0)
    Ticket(spec, model.state_dict(), Mask.ones_like(model), meta={"dataset": "digits"}).save(tmp_path)
    with pytest.raises(UsageError, match="float_layers must be one of float32, int8, got 'fp8'"):
        export_lce(tmp_path, tmp_path / "out", float_layers="fp8")
    assert not (tmp_path / "lce").exists()  # refused before anything is written


def test_quantize_per_channel_invariants():
    w = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [3.0, 1e-3, -2.0]], dtype=np.float32)
    q, scale = quantize_per_channel(w, axis=0)
    assert q.dtype == np.int8 and scale.dtype == np.float32 and scale.shape == (3,)
    assert q[0, 1] == -127 and q[2, 0] == 127 and (q[1] == 0).all() and scale[1] == 1.0
    assert (np.abs(q * scale[:, None] - w) <= scale[:, None] / 2 + 1e-7).all()
    qt, st = quantize_per_channel(w.T.copy(), axis=1)  # the axis is honoured: same grid transposed
    assert np.array_equal(qt, q.T) and np.array_equal(st, scale)
