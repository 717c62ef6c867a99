import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from ticket_factory import mask_2of4
from torch import nn

from compress.sparsity import nm
from export import nm_report
from export.onnx_graph import to_onnx


def test_checker_on_hand_made_linear_tensors():
    ok = torch.tensor([[1.0, 0, 2, 0, 0, 0, 0, 3]])
    bad = torch.tensor([[1.0, 2, 3, 0, 0, 0, 0, 0]])
    assert nm.check(ok, 2, 4).compliant and nm.check(ok, 2, 4).groups == 2
    r = nm.check(bad, 2, 4)
    assert not r.compliant and r.violating_groups == 1
    assert not nm.check(torch.ones(2, 6), 2, 4).groupable  # 6 input channels: no pad-free groups of 4


def test_checker_conv_layout_groups_along_input_channels():
    # (out=1, in=4, kh=1, kw=4). Zeros along kw do not help: TensorRT groups the 4 input channels per tap.
    along_kw = torch.zeros(1, 4, 1, 4)
    along_kw[0, :, 0, :2] = 1.0  # every tap position 0,1 has all 4 input channels non-zero
    assert not nm.check(along_kw, 2, 4).compliant
    along_c = torch.zeros(1, 4, 1, 4)
    along_c[0, :2, 0, :] = 1.0  # 2 of 4 input channels non-zero at every tap
    assert nm.check(along_c, 2, 4).compliant
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 16, 3, 3) * mask_2of4(torch.empty(8, 16, 3, 3), g)
    assert nm.check(w, 2, 4).compliant and nm.check(w, 2, 4).groups == 8 * 9 * 4


def test_report_on_exported_graph_sees_weights_as_tensorrt_does():
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 12), nn.ReLU(),
                          nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    with torch.no_grad():
        for i in (0, 3, 5):
            model[i].weight.mul_(mask_2of4(model[i].weight, g).float())
    rows = {r["weight"]: r for r in nm_report.report(to_onnx(model, (4, 8, 8)))}
    assert rows["0.weight"]["compliant"] and rows["0.weight"]["op"] == "Conv"
    assert rows["3.weight"]["compliant"] and rows["3.weight"]["shape"] == [12, 288]
    assert rows["5.weight"]["compliant"] and rows["5.weight"]["shape"] == [6, 12]
    assert not rows["7.weight"]["compliant"] and "6 input channels" in rows["7.weight"]["reason"]
    assert [r["layer"] for r in nm_report.non_compliant(list(rows.values()))] == [rows["7.weight"]["layer"]]


def _gemm_model(weight, trans_b: int):
    w = numpy_helper.from_array(weight.numpy(), "W")
    k = weight.shape[0] if not trans_b else weight.shape[1]
    n = weight.shape[1] if not trans_b else weight.shape[0]
    node = helper.make_node("Gemm", ["x", "W"], ["y"], transB=trans_b, name="fc")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])], [w])
    return helper.make_model(graph)


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_transb_decides_the_reduction_axis(trans_b):
    out_in = torch.tensor([[1.0, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1]])  # 2:4 along "in"
    stored = out_in if trans_b else out_in.T  # transB=0 stores B as (in, out)
    row = nm_report.report(_gemm_model(stored, trans_b))[0]
    assert row["compliant"] and row["shape"] == [4, 4]
    dense_rows = torch.tensor([[1.0, 1, 1, 0]] * 4)  # 3 of 4 along "in" in every group
    bad = nm_report.report(_gemm_model(dense_rows if trans_b else dense_rows.T, trans_b))[0]
    assert not bad["compliant"] and bad["violating_groups"] == 4
    onnx.checker.check_model(_gemm_model(stored, trans_b))


def test_non_constant_weight_is_reported():
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
                                            helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    row = nm_report.report(helper.make_model(graph))[0]
    assert not row["compliant"] and "not a constant" in row["reason"]


def test_nm_selected_ticket_is_2of4_in_the_exported_graph():
    """N:M selection (compress.selection) and the TensorRT-side report agree on the layout, end to end."""
    from compress.mask import Mask
    from compress.models import ModelSpec, build, prunable
    from compress.selection.nm import nm_select

    model = build(ModelSpec("conv2", (4, 8, 8), 10, 0.125), seed=0).eval()
    weights = prunable(model)
    mask = nm_select({n: w.detach().abs() for n, w in weights.items()}, Mask.ones_like(model),
                     {n: 0.5 for n in weights}, "2:4")
    mask.apply(model)
    rows = nm_report.report(to_onnx(model, (4, 8, 8)))
    assert len(rows) == 5 and all(r["compliant"] for r in rows), [r.get("reason") for r in rows]
    assert all(r["density"] == 0.5 for r in rows)
