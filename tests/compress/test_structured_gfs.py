"""Greedy forward selection: exact candidate scoring, greedy choice, end to end on digits, settings."""

import copy
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from compress.data import Dataset
from compress.errors import UsageError
from compress.models import ModelSpec, build
from compress.structured.candidates import candidate_scores, supports
from compress.structured.gfs import gfs, rescale_selected, select_units, uniform_gates
from compress.structured.rescale import fixed_multipliers
from compress.structured.result import eval_subset
from compress.structured.settings import GfsSettings
from compress.structured.shrink import scale_units, shrink
from compress.structured.suffix import SuffixRunner
from compress.structured.units import unit_groups
from compress.ticket import Ticket
from compress.train import TrainHparams, evaluate

SHAPE = (1, 8, 8)
FAST = TrainHparams(epochs=0.5, batch_size=64, eval_every=50)


def gated(model: nn.Module, group, gate: torch.Tensor) -> nn.Module:
    """The brute-force reference: a copy with the gate folded into the consumers."""
    net = copy.deepcopy(model)
    scale_units(net, group, gate)
    return net.eval()


def tiny_data(x: torch.Tensor, y: torch.Tensor) -> Dataset:
    return Dataset("tiny", x, y, x[:0], y[:0], x, y, int(y.max()) + 1)


@pytest.mark.parametrize("name,width,index", [("conv4", 0.25, 3), ("resnet20", 0.25, 4), ("lenet_300_100", 0.1, 0)])
def test_suffix_runner_scores_every_gate_exactly(name, width, index):
    model = build(ModelSpec(name, SHAPE, 10, width), seed=0).eval()
    group = unit_groups(model, SHAPE, include_coupled=False)[index]  # conv4: conv -> flatten -> fc; resnet: in a block
    runner = SuffixRunner(model, group)
    x, y = torch.randn(6, *SHAPE), torch.arange(6) % 10
    gates = torch.rand(4, group.size) * (torch.rand(4, group.size) > 0.5)
    with torch.no_grad():
        got = runner.logits(runner.prefix(x), gates)
        want = torch.stack([gated(model, group, g)(x) for g in gates])
        loss, acc = runner.scores(runner.prefix(x), gates, y, max_chunk=12)  # 2 gates per chunk: chunking is exact
    assert torch.allclose(got, want, atol=1e-5)
    ref = torch.stack([F.cross_entropy(w, y) for w in want])
    assert torch.allclose(loss, ref, atol=1e-5)
    assert torch.equal(acc, (want.argmax(-1) == y).float().mean(1))


@pytest.mark.parametrize("name,width,index", [("conv4", 0.25, 1), ("conv4", 0.25, 3), ("resnet20", 0.25, 4),
                                              ("lenet_300_100", 0.1, 1)])
def test_candidate_shortcut_equals_gating_the_whole_input(name, width, index):
    model = build(ModelSpec(name, SHAPE, 10, width), seed=0).eval()
    group = unit_groups(model, SHAPE, include_coupled=False)[index]
    runner = SuffixRunner(model, group)
    assert supports(runner)
    x, y = torch.randn(6, *SHAPE), torch.arange(6) % 10
    selected, cands = [0, 2], [1, 3, group.size - 1]
    with torch.no_grad():
        env = runner.prefix(x)
        want = runner.scores(env, uniform_gates(group.size, selected, cands), y, 100)
        got = candidate_scores(runner, env, selected, cands, y, max_chunk=12)
    assert torch.allclose(got[0], want[0], atol=1e-5) and torch.equal(got[1], want[1])


def test_greedy_picks_the_loss_minimizing_candidate_in_a_constructed_case():
    # Unit 2 reads the feature that decides the class; units 0, 1, 3 read noise or nothing.
    torch.manual_seed(0)
    x = torch.randn(200, 2)
    y = (x[:, 0] > 0).long()
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [0.0, 0.0]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[0.3, -0.2, -2.0, 0.5], [-0.1, 0.4, 2.0, -0.5]]))
        net[2].bias.copy_(torch.tensor([1.0, 0.0]))
    group = unit_groups(net, (2,))[0]
    st = GfsSettings(keep=0.25, candidates=4, batch_size=200)
    sel, log = select_units(net, group, tiny_data(x, y), st, 1, torch.Generator().manual_seed(0), (x, y))
    assert sel == [2] and log["kept"] == 1 and log["stopped"] == "width"


def test_each_greedy_step_adds_the_unit_of_lowest_loss():
    torch.manual_seed(1)
    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    net = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3)).eval()
    group = unit_groups(net, (6,))[0]
    st = GfsSettings(keep=0.5, candidates=12, batch_size=64)  # every unit is a candidate: no sampling
    sel, log = select_units(net, group, tiny_data(x, y), st, 4, torch.Generator().manual_seed(0), (x, y))
    chosen: list[int] = []
    for step in range(4):
        rest = [u for u in range(12) if u not in chosen]
        losses = {u: F.cross_entropy(gated(net, group, uniform_gates(12, chosen, [u])[0])(x), y).item() for u in rest}
        best = min(losses, key=losses.get)
        assert sel[step] == best and log["step_losses"][step] == pytest.approx(losses[best], abs=1e-5)
        chosen.append(best)


def test_uniform_gates_average_the_selected_units_rescaled_by_width():
    g = uniform_gates(8, [1, 5], [0, 7])
    assert torch.equal(g[0], torch.tensor([8 / 3, 8 / 3, 0, 0, 0, 8 / 3, 0, 0]))
    assert torch.equal(g[1].nonzero().flatten(), torch.tensor([1, 5, 7]))
    full = uniform_gates(4, [0, 1, 2], [3])[0]
    assert torch.equal(full, torch.ones(4))  # every unit selected: the original network


def test_folding_and_shrinking_keep_the_selected_function(digits):
    model = build(ModelSpec("conv2", SHAPE, 10, 0.25), seed=0)
    group = unit_groups(model, SHAPE)[1]
    xy = eval_subset(digits, 300, seed=0)
    sel, log = select_units(model, group, digits, GfsSettings(keep=0.25, batch_size=32), 4,
                            torch.Generator().manual_seed(0), xy)
    rescale_selected(model, group, sel)
    shrink(model, {group.name: sel}, SHAPE)
    assert model[2].out_channels == 4 and evaluate(model, *xy)[1] == pytest.approx(log["train_acc_selected"], abs=1e-6)


def test_top1_tol_stops_a_layer_once_accuracy_recovers(digits):
    model = build(ModelSpec("lenet_300_100", SHAPE, 10, 0.1), seed=0)
    group = unit_groups(model, SHAPE)[0]
    st = GfsSettings(keep=1.0, top1_tol=1.0, skip_eval=1.0)  # any accuracy counts as recovered
    sel, log = select_units(model, group, digits, st, group.size, torch.Generator().manual_seed(0),
                            eval_subset(digits, 100, 0))
    assert len(sel) == 1 and log["stopped"] == "accuracy"


def test_fixed_multipliers_train_w_over_s_and_fold_back():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(5, 3)
    w = net[2].weight.detach().clone()
    with fixed_multipliers(net, (3,), {"0": 4.0}):
        assert parametrize.is_parametrized(net[2], "weight")
        assert torch.allclose(net[2].parametrizations.weight.original, w / 4) and torch.allclose(net[2].weight, w)
        with torch.no_grad():
            net[2].parametrizations.weight.original.add_(1.0)  # what an optimizer step changes
    assert not parametrize.is_parametrized(net[2]) and isinstance(net[2].weight, nn.Parameter)
    assert torch.allclose(net[2].weight, w + 4.0)
    assert net(x).shape == (5, 2)


def test_gfs_end_to_end_gives_a_ticket_that_rebuilds(digits, tmp_path):
    spec = ModelSpec("lenet_300_100", SHAPE, 10, 0.25)
    model = build(spec, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    st = GfsSettings(keep=0.5, candidates=10, batch_size=32, eval_samples=200, layer_train=FAST, finetune=FAST)
    res = gfs(model, spec, digits, st, seed=0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the input net is untouched
    assert res.metrics["widths"] == {"1": 38, "3": 12} and [e["kept"] for e in res.layers] == [38, 12]
    assert res.keep["1"] == sorted(res.keep["1"]) and len(set(res.keep["1"])) == 38
    res.ticket({"dataset": "digits"}).save(tmp_path)
    loaded = Ticket.load(tmp_path)
    x = digits.x_test[:20]
    with torch.no_grad():
        assert torch.equal(loaded.model().eval()(x), res.model.eval()(x))
    assert loaded.meta["method"] == "gfs" and loaded.meta["keep"] == res.keep
    assert loaded.metrics["widths"] == {"1": 38, "3": 12} and len(loaded.metrics["selection"]) == 2


def test_gfs_refuses_units_it_cannot_gate(digits):
    spec = ModelSpec("resnet20", SHAPE, 10, 0.25)
    with pytest.raises(UsageError, match="cannot gate the units of 'conv1' .*residual stream"):
        gfs(build(spec, seed=0), spec, digits, GfsSettings(layers=("conv1",)), seed=0)


def test_settings_are_validated_and_import_no_torch():
    with pytest.raises(UsageError, match="keep must be in"):
        GfsSettings(keep=0.0)
    with pytest.raises(UsageError, match="would keep every unit"):
        GfsSettings(keep=1.0)
    assert GfsSettings(keep=0.25).digest() != GfsSettings().digest()
    code = "import sys, compress.structured.settings; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("rescale", [True, False])
def test_rescale_scales_the_kept_units_into_the_next_layer_or_not(digits, rescale):
    spec = ModelSpec("lenet_300_100", SHAPE, 10, 0.25)
    model = build(spec, seed=0)
    still = TrainHparams(optimizer="sgd", lr=1e-12, iterations=1, eval_every=1)  # finetunes that move nothing
    st = GfsSettings(keep=0.5, candidates=10, batch_size=32, eval_samples=200, rescale=rescale,
                     layer_train=still, finetune=still)
    res = gfs(model, spec, digits, st, seed=0)
    k1, k3 = res.keep["1"], res.keep["3"]
    f1, f3 = (75 / 38, 25 / 12) if rescale else (1.0, 1.0)
    assert torch.allclose(res.model[1].weight, model[1].weight[k1], atol=1e-9)
    assert torch.allclose(res.model[3].weight, model[3].weight[k3][:, k1] * f1, atol=1e-6)
    assert torch.allclose(res.model[5].weight, model[5].weight[:, k3] * f3, atol=1e-6)
