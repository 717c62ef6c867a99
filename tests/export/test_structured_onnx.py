"""A shrunk structured ticket exports to ONNX unchanged, smaller, and matches PyTorch in ONNX Runtime."""

import onnx
import pytest

from compress.models import ModelSpec, build
from compress.structured.l1 import l1
from compress.structured.settings import OneShotSettings
from compress.train import TrainHparams
from export.onnx import export_onnx

SHAPE = (1, 8, 8)


@pytest.mark.parametrize("name,width,weight,shape", [("conv4", 0.25, "2.weight", (8, 8, 3, 3)),
                                                    ("lenet_300_100", 0.25, "3.weight", (12, 38))])
def test_shrunk_ticket_exports_with_ort_parity(digits, tmp_path, name, width, weight, shape):
    spec = ModelSpec(name, SHAPE, 10, width)
    large = build(spec, seed=0)
    res = l1(large, spec, digits, OneShotSettings(keep=0.5, finetune=TrainHparams(epochs=0.5, batch_size=64)), 0)
    res.ticket({"dataset": "digits", "digest": "0"}).save(tmp_path / "t")
    rep = export_onnx(tmp_path / "t", tmp_path / "onnx", sparse_storage="dense")
    assert rep["verification"]["agreement"] == 1.0 and rep["verification"]["max_abs_diff"] <= 1e-4
    inits = {i.name: tuple(i.dims) for i in onnx.load(rep["artifact"]).graph.initializer}
    assert inits[weight] == shape
    big = sum(p.numel() for p in large.parameters()) * 4
    assert rep["file_bytes"] < 0.5 * big
