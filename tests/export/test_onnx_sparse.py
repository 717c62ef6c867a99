import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from compress.errors import UsageError
from export.onnx_graph import to_onnx
from export.onnx_sparse import to_dense_storage, to_sparse_storage
from export.ort_session import run, session


def _pruned_mlp(density_first: float, density_last: float) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 10)).eval()
    with torch.no_grad():
        for layer, d in ((model[1], density_first), (model[3], density_last)):
            layer.weight.mul_((torch.rand(layer.weight.shape) < d).float())
    return model


def test_auto_stores_sparse_only_where_smaller_and_ort_gives_identical_outputs():
    dense = to_onnx(_pruned_mlp(0.1, 0.6), (1, 8, 8))
    stored, report = to_sparse_storage(dense, "auto")
    assert {r["name"]: r["stored"] for r in report} == {"1.weight": "coo", "3.weight": "dense"}
    assert [s.values.name for s in stored.graph.sparse_initializer] == ["1.weight"]
    assert stored.ByteSize() < 0.5 * dense.ByteSize()
    onnx.checker.check_model(stored)  # structural check (shape inference rejects sparse Gemm inputs)
    x = np.random.default_rng(0).standard_normal((50, 1, 8, 8)).astype(np.float32)
    a = run(session(dense.SerializeToString()), x)
    b = run(session(stored.SerializeToString()), x)
    assert np.array_equal(a, b)


def test_coo_converts_every_pruned_tensor_and_dense_none():
    dense = to_onnx(_pruned_mlp(0.1, 0.6), (1, 8, 8))
    coo, _ = to_sparse_storage(dense, "coo")
    assert len(coo.graph.sparse_initializer) == 2 and coo.ByteSize() > to_sparse_storage(dense, "auto")[0].ByteSize()
    assert len(to_sparse_storage(dense, "dense")[0].graph.sparse_initializer) == 0
    with pytest.raises(UsageError, match="auto, dense, coo"):
        to_sparse_storage(dense, "csr")


def test_dense_round_trip_restores_every_weight_exactly():
    dense = to_onnx(_pruned_mlp(0.05, 0.2), (1, 8, 8))
    back = to_dense_storage(to_sparse_storage(dense, "coo")[0])
    orig = {i.name: numpy_helper.to_array(i) for i in dense.graph.initializer}
    again = {i.name: numpy_helper.to_array(i) for i in back.graph.initializer}
    assert orig.keys() == again.keys()
    for k in orig:
        assert np.array_equal(orig[k], again[k]) and orig[k].dtype == again[k].dtype
    onnx.checker.check_model(back, full_check=True)
