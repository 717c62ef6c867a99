"""Physical shrinking: unit groups, exact function preservation, coupled layers, shrunk tickets."""

import pytest
import torch
from torch import nn

from compress.errors import UsageError
from compress.mask import Mask
from compress.models import ModelSpec, build
from compress.structured.shrink import scale_units, shrink, shrunk_copy, structured_spec, widths
from compress.structured.units import kept_count, unit_groups
from compress.ticket import Ticket
from tests.export.ticket_factory import random_bn_stats

SHAPE = (1, 8, 8)


class UserNet(nn.Module):
    """A traceable user model: conv->BN->relu, a residual add, a concat, a functional pool and flatten."""

    def __init__(self, conv_after_concat: bool = True) -> None:
        super().__init__()
        self.conv_after_concat = conv_after_concat
        self.a = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.c = nn.Conv2d(8, 6, 3, padding=1)
        self.d = nn.Conv2d(8, 4, 1)
        self.e = nn.Conv2d(10, 5, 3, padding=1)
        self.fc = nn.Linear((5 if conv_after_concat else 10) * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.a(x)))
        h = torch.relu(self.b(h)) + h
        h = torch.cat([torch.relu(self.c(h)), torch.relu(self.d(h))], 1)
        if self.conv_after_concat:
            h = torch.relu(self.e(h))
        return self.fc(nn.functional.max_pool2d(h, 2).flatten(1))


def random_stats(model: nn.Module, seed: int = 0) -> nn.Module:
    random_bn_stats(model, torch.Generator().manual_seed(seed))
    return model.eval()


def random_keep(groups, frac: float, seed: int) -> dict[str, list[int]]:
    g = torch.Generator().manual_seed(seed)
    return {gr.name: sorted(torch.randperm(gr.size, generator=g)[: kept_count(gr.size, frac)].tolist())
            for gr in groups}


def silence_removed(model: nn.Module, groups, keep) -> None:
    """Make every removed unit unused: its consumers read it with weight 0."""
    for gr in groups:
        scale = torch.zeros(gr.size)
        scale[keep[gr.name]] = 1.0
        scale_units(model, gr, scale)


MODELS = [("lenet_300_100", 0.25), ("conv2", 0.25), ("conv4", 0.25), ("vgg11", 0.125), ("resnet20", 0.5)]


@pytest.mark.parametrize("name,width", MODELS)
def test_shrinking_preserves_the_function_when_removed_units_are_unused(name, width):
    model = random_stats(build(ModelSpec(name, SHAPE, 10, width), seed=0))
    groups = unit_groups(model, SHAPE)  # coupled groups too: ResNet's residual streams
    keep = random_keep(groups, 0.5, seed=1)
    silence_removed(model, groups, keep)
    x = torch.randn(16, *SHAPE)
    with torch.no_grad():
        before = model(x)
        small = shrunk_copy(model, keep, SHAPE).eval()
        after = small(x)
    assert torch.allclose(before, after, atol=1e-5, rtol=1e-4)
    assert widths(small, SHAPE) == {g: len(k) for g, k in keep.items()}
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())


def test_unit_groups_of_registry_models_in_forward_order():
    lenet = build(ModelSpec("lenet_300_100", (1, 28, 28), 10), seed=0)
    assert [(g.name, g.size) for g in unit_groups(lenet, (1, 28, 28))] == [("1", 300), ("3", 100)]
    conv4 = build(ModelSpec("conv4", (1, 28, 28), 10), seed=0)
    assert [(g.name, g.size) for g in unit_groups(conv4, (1, 28, 28))] == [
        ("0", 64), ("2", 64), ("5", 128), ("7", 128), ("11", 256), ("13", 256)]
    flat = unit_groups(conv4, (1, 28, 28))[3].consumers[0]  # conv 7 -> flatten -> fc 11: 49 features per channel
    assert flat.name == "11" and len(flat.positions) == 128 * 49 and flat.units[:50] == (0,) * 49 + (1,)
    res = build(ModelSpec("resnet20", SHAPE, 10), seed=0)
    inner = unit_groups(res, SHAPE, include_coupled=False)
    assert [g.name for g in inner] == [f"layers.{i}.conv1" for i in range(9)]
    stems = [g for g in unit_groups(res, SHAPE) if g.coupled]
    assert [g.name for g in stems] == ["conv1", "layers.3.conv2", "layers.6.conv2"]
    assert set(stems[1].producers) == {"layers.3.conv2", "layers.3.shortcut.0", "layers.4.conv2", "layers.5.conv2"}


def test_conv_bn_conv_shrink_consistently_with_sliced_statistics():
    model = random_stats(build(ModelSpec("vgg11", SHAPE, 10, 0.125), seed=0))
    bn_before = model[1].running_mean.clone()
    keep = {"0": [1, 3, 4, 6], "4": [0, 2, 5, 7, 9, 11, 13, 15]}
    shrink(model, keep, SHAPE)
    assert model[0].out_channels == model[1].num_features == model[4].in_channels == 4
    assert model[4].out_channels == model[5].num_features == model[8].in_channels == 8
    assert torch.equal(model[1].running_mean, bn_before[keep["0"]])


def test_residual_adds_shrink_every_coupled_layer():
    model = random_stats(build(ModelSpec("resnet20", SHAPE, 10, 0.5), seed=0))
    keep = {"layers.3.conv2": [0, 5, 9, 15], "layers.4.conv1": [1, 2]}
    shrink(model, keep, SHAPE)
    stage = [model.layers[3].conv2, model.layers[3].shortcut[0], model.layers[4].conv2, model.layers[5].conv2]
    assert all(c.out_channels == 4 for c in stage)
    assert model.layers[3].bn2.num_features == model.layers[3].shortcut[1].num_features == 4
    assert model.layers[4].conv1.in_channels == model.layers[5].conv1.in_channels == 4
    assert model.layers[6].conv1.in_channels == model.layers[6].shortcut[0].in_channels == 4
    inner = model.layers[4]
    assert inner.conv1.out_channels == inner.bn1.num_features == inner.conv2.in_channels == 2
    assert model(torch.randn(2, *SHAPE)).shape == (2, 10)


def test_traceable_user_model_with_add_and_concat():
    model = random_stats(UserNet())
    groups = unit_groups(model, SHAPE)
    assert [g.name for g in groups] == ["a", "c", "d", "e"] and set(groups[0].producers) == {"a", "b"}
    assert groups[2].consumers[0].positions == (6, 7, 8, 9)  # d's channels come after c's in the concat
    keep = {"a": [0, 2, 5], "c": [1, 4], "d": [3], "e": [0, 2, 3]}
    silence_removed(model, groups, keep)
    x = torch.randn(8, *SHAPE)
    with torch.no_grad():
        small = shrunk_copy(model, keep, SHAPE).eval()
        assert torch.allclose(model(x), small(x), atol=1e-5)
    assert small.e.in_channels == 3 and small.fc.in_features == 3 * 16 and small.b.out_channels == 3


def test_coupling_torch_pruning_gets_wrong_is_not_offered():
    # Torch-Pruning 1.6 couples c with d when their concat is flattened into fc: those layers are not units.
    model = UserNet(conv_after_concat=False)
    assert [g.name for g in unit_groups(model, SHAPE)] == ["a"]
    with pytest.raises(UsageError, match="'c' names no group of removable units"):
        shrink(model, {"c": [0]}, SHAPE)


def test_shrunk_ticket_rebuilds_itself(tmp_path):
    spec = ModelSpec("conv2", SHAPE, 10, 0.25, extra={"transforms": [{"name": "batchnorm", "affine": True}]})
    model = random_stats(build(spec, seed=3))
    keep = random_keep(unit_groups(model, SHAPE), 0.25, seed=2)
    small = shrunk_copy(model, keep, SHAPE)
    init = {k: v.clone() for k, v in small.state_dict().items()}
    Ticket(structured_spec(spec, keep), init, Mask.ones_like(small), small.state_dict(),
           meta={"dataset": "digits"}).save(tmp_path)
    loaded = Ticket.load(tmp_path)
    rebuilt = loaded.model().eval()
    x = torch.randn(4, *SHAPE)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), small.eval()(x))
    assert loaded.spec.extra["transforms"][-1]["keep"] == {k: sorted(v) for k, v in keep.items()}
    assert loaded.density == 1.0 and loaded.mask.total == sum(w.numel() for n, w in small.named_parameters()
                                                            if n.endswith("weight") and w.ndim > 1)


def test_bad_keep_is_a_clear_error():
    model = build(ModelSpec("lenet_300_100", SHAPE, 10, 0.25), seed=0)
    with pytest.raises(UsageError, match="names no group of removable units.*1, 3"):
        shrink(model, {"5": [0]}, SHAPE)
    with pytest.raises(UsageError, match="units 0..74; got index 75"):
        shrink(model, {"1": [0, 75]}, SHAPE)
    with pytest.raises(UsageError, match="would keep no unit"):
        shrink(model, {"3": []}, SHAPE)
    assert model[1].out_features == 75  # nothing was changed by the refused calls
