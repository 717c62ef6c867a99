import pytest
import torch
from torch import nn

from compress import models
from compress.binarize.layers import BinaryConv2d, BinaryLinear
from compress.binarize.scored import ScoredLinear, scored_layers, scored_model, topk_masks
from compress.errors import UsageError
from compress.finders.mpt import MptHparams, base_spec, init_weights, to_ticket
from compress.measure import storage_bytes
from compress.models import ModelSpec
from compress.ticket import Ticket
from compress.train import TrainHparams, predict, train
from pipelines import api

TINY_TRAIN = TrainHparams(iterations=6, batch_size=64, eval_every=3, lr=0.01)


def _search(digits, act="float", keep=0.5, selection="layerwise"):
    hp = MptHparams(keep=keep, act=act, selection=selection)
    base = base_spec(ModelSpec("conv2", digits.input_shape, 10, 0.25), hp)
    net = init_weights(models.build(base, seed=0), hp.weight_init, 0)
    init = {k: v.clone() for k, v in net.state_dict().items()}
    return hp, base, init, scored_model(net, keep, act, selection)


def _n_keep(n: int, keep: float) -> int:
    return n - round((1 - keep) * n)


def test_topk_selects_exactly_k_per_layer_and_globally():
    g = torch.Generator().manual_seed(0)
    scores = {"a": torch.randn(7, 5, generator=g), "b": torch.randn(3, 4, 3, 3, generator=g)}
    for keep in (0.2, 0.5, 1.0):
        masks = topk_masks(scores, keep, "layerwise")
        assert {n: int(m.sum()) for n, m in masks.items()} == {n: _n_keep(s.numel(), keep) for n, s in scores.items()}
        glob = topk_masks(scores, keep, "global")
        assert sum(int(m.sum()) for m in glob.values()) == _n_keep(35 + 108, keep)
        kept = torch.cat([scores[n].abs()[glob[n]] for n in scores])
        dropped = torch.cat([scores[n].abs()[~glob[n]] for n in scores])
        assert dropped.numel() == 0 or kept.min() >= dropped.max()


def test_selection_goes_through_compress_selection_ties_erk_and_2_4():
    tied = {"a": torch.ones(4, 8)}  # every |score| equal: the lowest positions win, every time
    first = topk_masks(tied, 0.25)["a"].flatten()
    assert torch.equal(first, torch.arange(32) < 8) and torch.equal(topk_masks(tied, 0.25)["a"].flatten(), first)
    g = torch.Generator().manual_seed(1)
    scores = {"a": torch.randn(16, 8, generator=g), "b": torch.randn(8, 64, generator=g)}
    erk = topk_masks(scores, 0.25, "erk")
    assert sum(int(m.sum()) for m in erk.values()) == round(0.25 * (128 + 512))
    assert erk["a"].float().mean() > erk["b"].float().mean()  # ERK: the smaller layer keeps a larger share
    nm24 = topk_masks(scores, 0.5, "2:4")
    assert all(int(g_.sum()) == 2 for m in nm24.values() for g_ in m.reshape(-1, 4))


def test_alpha_is_mean_abs_of_kept_weights():
    net = scored_model(nn.Sequential(nn.Linear(8, 4)), 0.25)
    lin = net[0]
    assert isinstance(lin, ScoredLinear)
    w = lin.binary_weight().detach()
    kept = lin.keep
    assert int(kept.sum()) == 8
    alpha = lin.weight.abs()[kept].mean()
    assert torch.allclose(w[kept].abs(), alpha.expand(8)) and bool((w[~kept] == 0).all())
    assert torch.equal(torch.sign(w[kept]), torch.where(lin.weight[kept] >= 0, 1.0, -1.0))


def test_gradients_reach_scores_and_weights_stay_bit_identical(digits):
    _, _, init, net = _search(digits, act="binary")
    before = {n: m.scores.detach().clone() for n, m in scored_layers(net).items()}
    train(net, digits, TINY_TRAIN)
    for name, layer in scored_layers(net).items():
        assert torch.equal(layer.weight, init[f"{name}.weight"])  # frozen random weights
        assert not layer.weight.requires_grad and layer.weight.grad is None
        assert not torch.equal(layer.scores, before[name])  # the scores learned


def test_saved_mpt_is_binary_layers_and_reloads_to_identical_predictions(digits, tmp_path):
    hp, base, init, net = _search(digits, act="binary", keep=0.3, selection="global")
    train(net, digits, TINY_TRAIN)
    ticket, scores = to_ticket(net, init, base, hp, [n for n in scored_layers(net)])
    ticket.save(tmp_path)
    again = Ticket.load(tmp_path).model("final")
    kinds = {type(m) for m in again.modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert kinds == {BinaryConv2d, BinaryLinear}
    assert all(m.scale_mode == "layer" for m in again.modules() if isinstance(m, (BinaryConv2d, BinaryLinear)))
    x = digits.x_test[:50]
    assert torch.equal(predict(net, x), predict(again, x))  # scored search net == plain binary ticket
    assert abs(Ticket.load(tmp_path).density - 0.3) < 1e-3 and set(scores) == {f"{n}.scores" for n in
                                                                                scored_layers(net)}
    assert Ticket.load(tmp_path).meta["binary"]["ternary"] is True


MPT_TINY = {"scope": {"model": "conv2", "width": 0.25, "dataset": "digits"},
            "baseline_train": {"iterations": 4, "batch_size": 64}, "scores": {"iterations": 4}}


def test_finder_levels_bits_and_resume(digits, tmp_path):
    report = api.run("mpt", out=tmp_path, **MPT_TINY)
    levels = report["details"]["levels"]
    assert [r["level"] for r in levels] == [0, 1]
    assert levels[1]["density"] == pytest.approx(0.5, abs=1e-3)
    ticket = Ticket.load(api.artifact(report, "binary_ticket"))
    assert ticket.meta["binary_bits"] * 16 <= ticket.meta["binary_float32_bits"]
    assert report["metrics"]["bits_per_weight"] < 32 and report["metrics"]["binary_layer_bits_per_weight"] < 2.2
    dense = storage_bytes(Ticket.load(report["run_dir"] + "/seed-0/level-0"))
    assert report["metrics"]["storage_bytes"] * 4 < dense  # 1-bit layers are stored at 1 bit, not 32
    again = api.run("mpt", out=tmp_path, **MPT_TINY)  # finished: read back, not retrained
    assert again["resumed"] and again["details"]["levels"] == levels


@pytest.mark.parametrize("keep", [0.0, -0.1, 1.5])
def test_keep_outside_0_1_is_refused(keep):
    with pytest.raises(UsageError, match="keep must be in"):
        MptHparams(keep=keep)
    if keep > 1:
        return
    with pytest.raises(UsageError, match="keep must be in"):
        topk_masks({"a": torch.ones(3)}, keep)


def test_signed_constant_init_and_batchnorm_option(digits):
    hp = MptHparams(bn="plain", weight_init="signed_constant")
    net = init_weights(models.build(base_spec(ModelSpec("conv2", digits.input_shape, 10, 0.25), hp)),
                       hp.weight_init, 0)
    bns = [m for m in net.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    assert len(bns) == 4 and not any(b.affine for b in bns)  # after every layer but the output one
    assert not isinstance(list(net)[-1], (nn.BatchNorm1d,))
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert torch.allclose(m.weight.abs(), m.weight.abs().flatten()[0].expand_as(m.weight))


def test_mpt_binary_act_refused_right_after_softmax():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Softmax(dim=1), nn.Linear(8, 3))
    with pytest.raises(UsageError, match="layer '4'.*Softmax"):
        scored_model(model, 0.5, act="binary")
    assert scored_model(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), 0.5, act="binary")[1].__class__ \
        is nn.Identity


def test_mpt_on_a_resnet_uses_its_own_batchnorm_and_signs_inside_blocks(digits, tmp_path):
    settings = {"scope": {"model": "resnet20", "width": 0.25, "dataset": "digits"}, "act": "binary",
                "baseline": False, "scores": {"iterations": 2, "batch_size": 64}}
    with pytest.raises(UsageError, match="CifarResNet already has BatchNorm.*--bn none"):
        api.run("mpt", out=tmp_path, **settings)
    report = api.run("mpt", out=tmp_path, **{**settings, "bn": "none"})
    ticket = Ticket.load(api.artifact(report, "ticket"))
    net = ticket.model("final")
    binary = [m for m in net.modules() if isinstance(m, (BinaryConv2d, BinaryLinear))]
    assert len(binary) == 22 and sum(m.binary_act for m in binary) == 21  # all but the stem sign their input
    assert not any(isinstance(m, nn.ReLU) for m in net.modules())
