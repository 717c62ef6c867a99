import torch
from ticket_factory import random_bn_stats
from torch import nn

from export.fold_bn import fold_batchnorm
from export.onnx_graph import to_onnx


class Branchy(nn.Module):
    """conv1's output feeds both bn1 and the residual add: folding bn1 into conv1 would change the add."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv1(x)
        return self.bn2(self.conv2(torch.relu(self.bn1(y)))) + y


def _stats(model):
    random_bn_stats(model, torch.Generator().manual_seed(1))
    return model.eval()


def test_conv_and_linear_bn_fold_exactly_and_keep_zeros():
    model = _stats(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(8 * 4 * 4, 6, bias=False), nn.BatchNorm1d(6)))
    with torch.no_grad():
        model[0].weight[:, :, 0, :] = 0  # pruned weights must stay exactly zero after folding
    folded, report = fold_batchnorm(model)
    assert report.folded == [("0", "1"), ("4", "5")] and not report.skipped
    assert isinstance(folded[1], nn.Identity) and isinstance(folded[5], nn.Identity)
    assert torch.count_nonzero(folded[0].weight[:, :, 0, :]) == 0
    x = torch.randn(16, 3, 6, 6)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(folded[0](x), model[0](x))  # the weights really changed
    assert isinstance(model[1], nn.BatchNorm2d)  # the original is untouched


def test_bn_on_a_shared_output_is_not_folded():
    model = _stats(Branchy())
    folded, report = fold_batchnorm(model)
    assert report.folded == [("conv2", "bn2")]
    assert report.skipped == [("bn1", "conv1's output also feeds other ops")]
    x = torch.randn(4, 4, 5, 5)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), rtol=1e-5, atol=1e-5)


def test_bn_without_running_stats_is_left_alone():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, track_running_stats=False)).eval()
    folded, report = fold_batchnorm(model)
    assert report.folded == [] and "running statistics" in report.skipped[0][1]
    assert isinstance(folded[1], nn.BatchNorm2d)


def test_folded_graph_has_no_batchnorm_op():
    model = _stats(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 3)))
    folded, _ = fold_batchnorm(model)
    ops = [n.op_type for n in to_onnx(folded, (1, 8, 8)).graph.node]
    assert ops == ["Conv", "Flatten", "Gemm"]
