"""LCE export: real conversions (one TensorFlow worker launch for three nets), verified against PyTorch."""

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from compress import models
from compress.binarize import BinaryConv2d, BinaryLinear
from compress.mask import Mask
from compress.ticket import Ticket
from compress.train import TrainHparams, predict, train
from export.lce import finish_job, prepare_job, run_worker
from export.lce_graph import UnsupportedLayersError, describe
from export.verify_lce import ExportVerificationError, verify
from pipelines.cli import app
from tests.export.lce_nets import ResidualBinaryNet, binary_net, float_act_net, prune_every_third, randomize_bn

pytestmark = pytest.mark.skipif(__import__("importlib").util.find_spec("larq_compute_engine") is None,
                                reason="larq-compute-engine (edge extra) not installed")


@pytest.fixture(scope="module")
def exported(digits, tmp_path_factory):
    torch.manual_seed(0)
    a = randomize_bn(prune_every_third(binary_net((1, 8, 8), 10)))
    train(a, digits, TrainHparams(iterations=60, batch_size=64, lr=3e-3, eval_every=60))
    prune_every_third(a).eval()
    b = float_act_net((1, 8, 8), 10)
    b.load_state_dict(a.state_dict())  # MPT-1/32: same weights and masks, float activations
    spec = models.ModelSpec("conv2", (1, 8, 8), 10, 0.25, extra={"transforms": [{"name": "binarize", "act": "binary"}]})
    c = models.build(spec, seed=0).eval()
    with torch.no_grad():  # zero biases (the init) make pre-sign values exactly 0 (ties LCE binarizes differently)
        for m in c.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.uniform_(-0.1, 0.1)
    r = randomize_bn(prune_every_third(ResidualBinaryNet((1, 8, 8), 10)))
    train(r, digits, TrainHparams(iterations=60, batch_size=64, lr=3e-3, eval_every=60))
    prune_every_third(r)
    # ResNet-20 from the registry, binarized with binary activations (its block ReLUs become Identity)
    resnet = models.build(models.ModelSpec("resnet20", (1, 8, 8), 10, 2.0, extra={"transforms": [
        {"name": "binarize", "act": "binary"}]}), seed=0)
    train(resnet, digits, TrainHparams(iterations=60, batch_size=64, lr=3e-3, eval_every=60))
    nets = {"mpt11": a.eval(), "mpt132": b.eval(), "conv2": c, "residual": r.eval(), "resnet20": resnet.eval()}
    root = tmp_path_factory.mktemp("lce")
    x, y = digits.split("test")
    jobs = {k: (prepare_job(root / k, describe(m, (1, 8, 8)), x.numpy()), describe(m, (1, 8, 8)))
            for k, m in nets.items()}
    run_worker([j for j, _ in jobs.values()])
    reports = {k: finish_job(j, g, nets[k], x, y, 0.99) for k, (j, g) in jobs.items()}
    return {"nets": nets, "jobs": jobs, "reports": reports, "x": x, "y": y}


def test_ternary_binary_net_matches_pytorch_on_the_whole_test_set(exported):
    r = exported["reports"]["mpt11"]
    assert r["samples"] == 360 and r["agreement"] >= 0.99
    assert abs(r["lce_test_acc"] - r["torch_test_acc"]) <= 0.01
    assert r["torch_test_acc"] > 0.3  # trained: the comparison is not between two constant predictors
    assert r["max_abs_diff"] < 1e-3


def test_binary_layers_are_bit_packed_bconvs_with_true_bits(exported):
    r = exported["reports"]["mpt11"]
    rows = {row["layer"]: row for row in r["layers"]}
    assert [rows[n]["kind"] for n in ("0", "3", "7", "10", "13")] == ["float", "ternary", "ternary", "ternary", "float"]
    assert r["ops"]["LceBconv2d"] == 6  # three ternary layers, two bit-packed kernels each (one 1x1 for the Linear)
    for n in ("3", "7", "10"):
        assert rows[n]["bit_packed"] and rows[n]["stored_bits"] == 2 * rows[n]["weights"]  # 2 bits: no padding
    assert r["ternary"] and r["binary_layer_bits"] == r["binary_layer_bits_limit"]
    assert rows["0"]["bits_per_weight"] == 32.0


def test_pruned_weights_are_zero_not_plus_one(exported):
    a, x = exported["nets"]["mpt11"], exported["x"]
    lce = np.load(exported["jobs"]["mpt11"][0] / "lce_out.npy")
    naive = copy.deepcopy(a)
    for m in naive.modules():
        if isinstance(m, (BinaryConv2d, BinaryLinear)):
            m.keep.fill_(True)  # what bit-packing without the ternary trick computes: sign(0) = +1
    naive_out = predict(naive, x).numpy()
    exact = np.abs(lce - predict(a, x).numpy()).max()
    assert np.abs(lce - naive_out).max() > 1000 * max(exact, 1e-6)


def test_float_activation_layers_are_exported_as_float_and_said_so(exported):
    r = exported["reports"]["mpt132"]
    assert r["agreement"] >= 0.99 and "LceBconv2d" not in r["ops"]
    assert r["float_binary_layers"] == ["3", "7", "10"]
    row = next(row for row in r["layers"] if row["layer"] == "3")
    assert row["bits_per_weight"] == 32.0 and "float activations" in row["note"]
    assert any("no layer is bit-packed" in w for w in r["warnings"])


def test_binary_layer_that_came_out_as_float_op_is_named(exported):
    graph = exported["jobs"]["mpt11"][1]
    ops_of_float_export = json.loads((exported["jobs"]["mpt132"][0] / "ops.json").read_text())
    out = predict(exported["nets"]["mpt11"], exported["x"]).numpy()
    with pytest.raises(ExportVerificationError, match=r"3 \(ternary.*7 \(ternary.*10 \(ternary"):
        verify(graph, ops_of_float_export, out, out, exported["y"].numpy())


def test_disagreeing_outputs_are_measured_for_the_parity_gate(exported):
    graph, job = exported["jobs"]["mpt11"][1], exported["jobs"]["mpt11"][0]
    ops = json.loads((job / "ops.json").read_text())
    out = predict(exported["nets"]["mpt11"], exported["x"]).numpy()
    shuffled = out[np.random.default_rng(0).permutation(len(out))]
    rep = verify(graph, ops, out, shuffled, exported["y"].numpy())  # measured, not refused: the gate decides
    assert rep["agreement"] < 0.5 and rep["max_abs_diff"] > 0.1 and rep["packed_fraction"] == 1.0


def test_padding_waste_is_warned_and_counted(exported):
    r = exported["reports"]["conv2"]
    warnings = " | ".join(r["warnings"])
    assert "2: 16 input channels are bit-packed into 1 x 32 bits: 50%" in warnings
    assert r["agreement"] >= 0.99
    conv = next(row for row in r["layers"] if row["layer"] == "2")
    assert conv["bits_per_weight"] == 2.0 and conv["bits_limit"] == conv["weights"]  # 16 of 32 bits are padding
    assert exported["reports"]["mpt11"]["warnings"] == []


def test_relu_feeding_a_binary_activation_is_warned():
    net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), BinaryConv2d(32, 32, 3, binary_act=True), nn.Flatten(),
                        nn.Linear(32 * 4 * 4, 10))
    assert any(w.startswith("2: binarizes the output of a ReLU") for w in describe(net, (1, 8, 8)).warnings)


def test_worker_never_imports_torch(exported):
    loaded = json.loads((exported["jobs"]["mpt11"][0] / "modules.json").read_text())
    assert loaded == {"torch": False, "tensorflow": True, "larq": True, "larq_compute_engine": True}


def test_residual_blocks_export_with_bit_packed_binary_convs_and_adds(exported):
    r = exported["reports"]["residual"]
    assert r["agreement"] >= 0.99 and r["max_abs_diff"] < 1e-3 and r["torch_test_acc"] > 0.3
    assert r["ops"]["ADD"] >= 2  # the two residual adds (the converter may also add its own)
    rows = {row["layer"]: row for row in r["layers"]}
    assert [rows[n]["kind"] for n in ("stem.0", "conv1", "conv2", "down.0", "fc")] == [
        "float", "ternary", "ternary", "float", "float"]
    assert r["ops"]["LceBconv2d"] == 4 and rows["conv2"]["stored_bits"] == 2 * rows["conv2"]["weights"]


def test_registry_resnet_with_binary_activations_exports_bit_packed(exported):
    r = exported["reports"]["resnet20"]
    assert r["agreement"] >= 0.99 and r["max_abs_diff"] < 1e-3 and r["torch_test_acc"] > 0.3
    assert r["ops"]["ADD"] >= 9  # one per BasicBlock of ResNet-20
    # every conv but the float stem (and the float fc) is a bit-packed LceBconv2d: 18 block convs, 2 shortcuts
    assert r["ops"]["LceBconv2d"] == 20 and not r["float_binary_layers"]
    assert r["binary_layer_bits"] == r["binary_layer_bits_limit"]  # 32/64/128 channels: no packing waste
    graph = exported["jobs"]["resnet20"][1]
    adds = [layer for layer in graph.layers if layer["op"] == "add"]
    assert len(adds) == 9 and all(len(set(a["srcs"])) == 2 for a in adds)
    # BatchNorms fold into their convs: no separate affine op, none for the projection shortcuts either
    assert not [layer for layer in graph.layers if layer["op"] == "affine"]


class _Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        return torch.cat([self.conv(x), self.conv(x)], 1).flatten(1)


class _DataDependent(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x


def test_layers_lce_cannot_express_are_listed():
    odd = nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.GELU(), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(UnsupportedLayersError, match=r"0 \(Conv2d with groups=2.*1 \(GELU: no LCE equivalent"):
        describe(odd, (2, 3, 3))
    with pytest.raises(UnsupportedLayersError, match=r"cat \(call_function cat: no LCE equivalent"):
        describe(_Branchy(), (1, 5, 5))
    with pytest.raises(UnsupportedLayersError, match="cannot be traced by torch.fx"):
        describe(_DataDependent(), (1, 5, 5))


def test_float_ticket_is_refused_with_a_hint(tmp_path):
    spec = models.ModelSpec("lenet_300_100", (1, 8, 8), 10, 0.25)
    model = models.build(spec, seed=0)
    Ticket(spec, model.state_dict(), Mask.ones_like(model), meta={"dataset": "digits"}).save(tmp_path)
    res = CliRunner().invoke(app, ["export", "lce", str(tmp_path)])
    assert res.exit_code == 2
    assert "float (non-binarized) ticket" in res.output and "lottery binarize" in res.output
    assert not (tmp_path / "lce").exists()
