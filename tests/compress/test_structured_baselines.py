"""Structured baselines and controls (L1-norm, random units, small dense), FLOPs and the verdict."""

import pytest
import torch

from compress.errors import UsageError
from compress.models import ModelSpec, build
from compress.structured.flops import flops
from compress.structured.l1 import l1, l1_choice, l1_scores
from compress.structured.random_units import random_choice, random_units
from compress.structured.settings import OneShotSettings, SmallDenseSettings, VerdictSettings
from compress.structured.shrink import shrunk_copy, widths
from compress.structured.small_dense import small_dense, small_spec
from compress.structured.units import unit_groups
from compress.structured.verdict import verdict
from compress.train import TrainHparams

SHAPE = (1, 8, 8)
FAST = TrainHparams(epochs=0.5, batch_size=64, eval_every=50)


def test_l1_keeps_the_filters_of_largest_l1_norm():
    model = build(ModelSpec("conv2", SHAPE, 10, 0.25), seed=0)
    for group in unit_groups(model, SHAPE):
        scores = l1_scores(model, group)
        w = model.get_submodule(group.name).weight
        assert torch.allclose(scores, w.abs().flatten(1).sum(1))
        kept = l1_choice(model, group, 5)
        dropped = [i for i in range(group.size) if i not in kept]
        assert len(kept) == 5 and scores[kept].min() >= scores[dropped].max()


def test_l1_sums_the_producers_of_a_residual_stream():
    model = build(ModelSpec("resnet20", SHAPE, 10, 0.25), seed=0)
    stream = [g for g in unit_groups(model, SHAPE) if g.coupled][0]
    want = sum(model.get_submodule(p).weight.abs().flatten(1).sum(1) for p in stream.producers)
    assert len(stream.producers) == 4 and torch.allclose(l1_scores(model, stream), want)


def test_random_units_are_seeded_and_sized():
    model = build(ModelSpec("lenet_300_100", SHAPE, 10, 0.25), seed=0)
    group = unit_groups(model, SHAPE)[0]
    a = random_choice(model, group, 19, torch.Generator().manual_seed(1))
    b = random_choice(model, group, 19, torch.Generator().manual_seed(1))
    c = random_choice(model, group, 19, torch.Generator().manual_seed(2))
    assert a == b != c and len(set(a)) == 19 and max(a) < group.size


@pytest.mark.parametrize("method", [l1, random_units])
def test_one_shot_methods_shrink_and_finetune(digits, method):
    spec = ModelSpec("conv2", SHAPE, 10, 0.25)
    model = build(spec, seed=0)
    res = method(model, spec, digits, OneShotSettings(keep=0.25, finetune=FAST), seed=0)
    assert res.metrics["widths"] == {"0": 4, "2": 4, "6": 16, "8": 16}
    assert widths(res.model, SHAPE) == res.metrics["widths"] and 0.0 <= res.metrics["test_acc"] <= 1.0
    rebuilt = build(res.spec)
    rebuilt.load_state_dict(res.model.state_dict())  # the spec rebuilds the shrunk shapes


@pytest.mark.parametrize("name", ["lenet_300_100", "conv4"])
def test_small_dense_has_the_widths_of_the_shrunk_network(digits, name):
    spec = ModelSpec(name, SHAPE, 10, 0.5)
    large = build(spec, seed=0)
    for keep in (0.25, 0.5):
        shrunk = shrunk_copy(large, {g.name: list(range(round(g.size * keep) or 1))
                                     for g in unit_groups(large, SHAPE)}, SHAPE)
        small = build(small_spec(spec, digits, keep), seed=0)
        assert widths(small, SHAPE) == widths(shrunk, SHAPE)
        assert flops(small, SHAPE).total == flops(shrunk, SHAPE).total
    res = small_dense(spec, digits, SmallDenseSettings(keep=0.25, train=FAST), seed=0)
    assert res.spec.width == 0.125 and res.keep == {}


def test_small_dense_refuses_a_model_whose_width_does_not_match(digits):
    with pytest.raises(UsageError, match="width multiplier scales every hidden layer"):
        small_spec(ModelSpec("resnet20", SHAPE, 10, 0.5), digits, 0.25)  # its residual streams would shrink too


def test_flops_count_every_multiply_add_twice():
    lenet = build(ModelSpec("lenet_300_100", SHAPE, 10, 0.25), seed=0)
    f = flops(lenet, SHAPE)
    assert f.per_layer == {"1": 2 * 64 * 75, "3": 2 * 75 * 25, "5": 2 * 25 * 10}
    assert f.total == sum(f.per_layer.values())
    conv = build(ModelSpec("conv2", SHAPE, 10, 0.25), seed=0)
    assert flops(conv, SHAPE).per_layer["2"] == 2 * 16 * 16 * 9 * 8 * 8
    assert flops(conv, SHAPE, batch=3).total == 3 * flops(conv, SHAPE).total
    small = shrunk_copy(lenet, {"1": list(range(30))}, SHAPE)
    assert flops(small, SHAPE).total == 2 * (64 * 30 + 30 * 25 + 25 * 10)


def test_verdict_wins_only_against_every_control():
    out = verdict([0.95, 0.96, 0.94], {"random": [0.92, 0.93, 0.91], "l1": [0.94, 0.95, 0.93]})
    assert out["winning"] and out["lost_to"] == []
    assert out["controls"]["random"]["diff_per_seed"] == pytest.approx([0.03, 0.03, 0.03])
    out = verdict([0.95, 0.96, 0.94], {"random": [0.92, 0.93, 0.91], "small_dense": [0.96, 0.95, 0.96]})
    assert not out["winning"] and out["lost_to"] == ["small_dense"]
    tie = verdict([0.95], {"l1": [0.95]})
    assert not tie["winning"]  # equal is not a win
    assert not verdict([0.951], {"l1": [0.95]}, margin=0.005)["winning"]
    with pytest.raises(UsageError, match="missing: l1"):
        verdict([0.9], {"l1": []})
    with pytest.raises(UsageError, match="unknown control"):
        VerdictSettings(controls=("reinit",))
