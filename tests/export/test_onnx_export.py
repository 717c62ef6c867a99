import hashlib

import onnx
import pytest
import torch
from ticket_factory import make_ticket
from torch import nn

from compress.models import ModelSpec, build
from compress.ticket import Ticket
from export.errors import ExportError, VerificationError
from export.fold_bn import fold_batchnorm
from export.onnx import export_onnx, read_metadata, ticket_sha256
from export.onnx_graph import to_onnx
from export.verify_onnx import verify

PLAIN_OPS = {"Conv", "Gemm", "Relu", "MaxPool", "Flatten", "Add", "GlobalAveragePool"}


@pytest.mark.parametrize("name,width", [("lenet_300_100", 0.25), ("conv2", 0.125), ("resnet20", 0.25)])
def test_round_trip_parity_linear_conv_residual(tmp_path, digits, name, width):
    ticket = Ticket.load(make_ticket(tmp_path, name, width, density=0.3))
    model = ticket.model("final").eval()
    folded, fold = fold_batchnorm(model)
    dense = to_onnx(folded, (1, 8, 8))
    ops = {n.op_type for n in dense.graph.node}
    assert ops <= PLAIN_OPS, ops  # masks baked in: no Mul/Where mask ops, no BatchNormalization
    if name == "resnet20":
        assert "Add" in ops and len(fold.folded) == 21  # every conv+BN pair of ResNet-20, 2 shortcuts included
    x, y = digits.split("test")
    checks = verify(dense, None, model, x, y)
    assert checks["agreement"] == 1.0 and checks["allclose"] and checks["samples"] == len(y)
    assert checks["max_abs_diff"] <= 1e-4 and checks["providers"] == ["CPUExecutionProvider"]
    # FC layers are Gemm nodes whose weight is a constant initializer (what TensorRT needs for sparse kernels).
    inits = {i.name for i in dense.graph.initializer}
    for node in dense.graph.node:
        if node.op_type in ("Gemm", "Conv"):
            assert node.input[1] in inits


def test_verification_measures_a_model_that_differs(digits):
    spec = ModelSpec("lenet_300_100", (1, 8, 8), 10, 0.25)
    a, b = build(spec, seed=0).eval(), build(spec, seed=1).eval()
    x, y = digits.split("test")
    checks = verify(to_onnx(a, (1, 8, 8)), None, b, x, y)  # measured for the parity gates, not judged here
    assert checks["agreement"] < 0.5 and not checks["allclose"] and checks["max_abs_diff"] > 1e-2


def test_export_ticket_writes_verified_small_file_with_metadata(tmp_path):
    tdir = make_ticket(tmp_path / "ticket", density=0.1)
    rep = export_onnx(tdir, tmp_path / "out")
    model = onnx.load(rep["artifact"])
    meta = read_metadata(model)
    assert meta["ticket_sha256"] == ticket_sha256(tdir.resolve()) and meta["hparams_digest"] == "0123abcd"
    assert float(meta["density"]) == pytest.approx(Ticket.load(tdir).density)
    assert float(meta["test_acc"]) == pytest.approx(rep["torch_test_acc"]) and meta["dataset"] == "digits"
    assert len(model.graph.sparse_initializer) == 3 and rep["file_bytes"] < 0.4 * rep["file_bytes_dense_storage"]
    assert rep["verification"]["sparse_storage_identical"] and "densifies" in rep["note"]
    assert rep["file_bytes"] == (tmp_path / "out" / "model.onnx").stat().st_size
    assert rep["sha256"] == hashlib.sha256((tmp_path / "out" / "model.onnx").read_bytes()).hexdigest()
    dense = export_onnx(tdir, tmp_path / "dense", sparse_storage="dense", batch=7)
    m = onnx.load(dense["artifact"])
    assert len(m.graph.sparse_initializer) == 0 and m.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 7
    assert dense["verification"]["agreement"] == 1.0  # a static batch of 7 still covers the whole test set


def test_fp16_export_casts_at_the_borders(tmp_path):
    rep = export_onnx(make_ticket(tmp_path / "t", "conv2", 0.125, density=0.5), tmp_path / "o", fp16=True)
    model = onnx.load(rep["artifact"])
    assert [n.op_type for n in model.graph.node][0] == "Cast" and model.graph.node[-1].op_type == "Cast"
    assert rep["verification"]["rtol"] == 1e-2 and rep["verification"]["agreement"] >= 0.99


class FFT(nn.Module):
    def forward(self, x):
        return torch.fft.fft(x).real


class Triangle(nn.Module):
    def forward(self, x):
        return torch.triu(x)


def test_unsupported_op_names_the_layer():
    model = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(64, 8), FFT()))
    with pytest.raises(ExportError, match=r"layer '1\.1' \(FFT\) uses aten::fft_fft"):
        to_onnx(model, (1, 8, 8))


def test_opset_too_old_for_the_graph():
    with pytest.raises(ExportError, match=r"layer '1' \(Triangle\).*needs ONNX opset >= 14; opset 11 is too old"):
        to_onnx(nn.Sequential(nn.Flatten(), Triangle()), (1, 8, 8), opset=11)
    with pytest.raises(ExportError, match=r"opset 5 is outside .*9\.\.20"):
        to_onnx(nn.Flatten(), (1, 8, 8), opset=5)


def test_a_graph_the_checker_rejects_is_refused_and_nothing_written(tmp_path, monkeypatch):
    tdir = make_ticket(tmp_path / "t")
    import export.onnx_graph as graph

    real = graph.to_onnx

    def broken(*args, **kwargs):  # an exporter bug: a node whose input no node produces
        model = real(*args, **kwargs)
        model.graph.node[0].input[0] = "nowhere"
        return model

    monkeypatch.setattr(graph, "to_onnx", broken)
    with pytest.raises(VerificationError, match="graph is invalid"):
        export_onnx(tdir, tmp_path / "o")
    assert not (tmp_path / "o" / "model.onnx").exists()
