import torch
import torch.nn.functional as F
from torch import nn

from compress.binarize import BinaryConv2d, BinaryLinear, from_float, sign, ste_sign


def test_sign_of_zero_is_plus_one():
    assert sign(torch.tensor([-2.0, -0.0, 0.0, 3.0])).tolist() == [-1, 1, 1, 1]


def test_ste_gradient_is_clipped_at_one():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.9, 1.5], requires_grad=True)
    ste_sign(x).sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 1, 0]


def test_binary_conv_equals_float_conv_fed_signed_scaled_weights():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    b = from_float(conv, scale="channel")
    b.keep[0, 0, 0, 0] = False  # one pruned weight: ternary
    x = torch.randn(2, 3, 5, 5)
    keep = b.keep.float()
    alpha = (conv.weight.abs() * keep).sum((1, 2, 3), keepdim=True) / keep.sum((1, 2, 3), keepdim=True)
    w = alpha * torch.where(conv.weight >= 0, 1.0, -1.0) * keep
    assert torch.allclose(b(x), F.conv2d(x, w, conv.bias, padding=1), atol=1e-6)
    assert b.binary_weight()[0, 0, 0, 0] == 0  # pruned stays 0, never +alpha


def test_binary_activation_pads_with_plus_one():
    conv = BinaryConv2d(1, 1, 3, padding=1, bias=False, scale="none", binary_act=True)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    out = conv(-torch.ones(1, 1, 3, 3))  # all inputs sign to -1; padding contributes +1 each
    # corner: 4 inputs (-1) + 5 padded (+1) = 1; edge: 6 inputs + 3 pads = -3; centre: 9 inputs = -9
    assert out[0, 0].tolist() == [[1, -3, 1], [-3, -9, -3], [1, -3, 1]]


def test_binary_linear_layer_scale_and_activations():
    lin = nn.Linear(6, 3)
    b = from_float(lin, scale="layer")
    b.binary_act = True
    x = torch.randn(4, 6)
    alpha = lin.weight.abs().mean()
    expected = F.linear(torch.where(x >= 0, 1.0, -1.0), alpha * torch.where(lin.weight >= 0, 1.0, -1.0), lin.bias)
    assert torch.allclose(b(x), expected, atol=1e-6)
    assert isinstance(b, BinaryLinear) and isinstance(b, nn.Linear)  # prunable like any linear layer


def test_binarized_ticket_rebuilds_identically(tmp_path):
    from compress import models
    from compress.mask import Mask
    from compress.ticket import Ticket

    spec = models.ModelSpec("conv2", (1, 8, 8), 10, 0.25,
                            extra={"transforms": [{"name": "binarize", "act": "binary", "scale": "channel"}]})
    model = models.build(spec, seed=0)
    kinds = [type(m).__name__ for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert kinds == ["Conv2d", "BinaryConv2d", "BinaryLinear", "BinaryLinear", "Linear"]
    mask = Mask.ones_like(model)
    mask["2.weight"][0] = False
    model.get_submodule("2").keep.copy_(mask["2.weight"])
    mask.apply(model)
    Ticket(spec, model.state_dict(), mask).save(tmp_path)
    again = Ticket.load(tmp_path).model("init")
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(model(x), again(x))
