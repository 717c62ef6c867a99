"""Dynamic sparse training (RigL, SET, static): the update rule's invariants, the schedule, ERK, FLOPs, ticket."""

import math

import pytest
import torch

from compress import models
from compress.dst import DstHparams, run
from compress.dst import rigl as rigl_rule
from compress.dst import set as set_rule
from compress.dst.densities import layer_counts, random_mask
from compress.dst.flops import flops
from compress.dst.schedule import drop_fraction, end_iteration, update_iterations
from compress.dst.update import DynamicMask
from compress.errors import UsageError
from compress.models import prunable
from compress.ticket import Ticket
from compress.train import train


def _spec(digits, width=0.5):
    return models.ModelSpec("lenet_300_100", digits.input_shape, 10, width)


def _hp(**kw):
    train_kw = {"iterations": 120, "batch_size": 32, "lr": 0.05, "eval_every": 60, **kw.pop("train", {})}
    return DstHparams(**{"sparsity": 0.9, "delta_t": 10, **kw}, train=DstHparams().train.replace(**train_kw))


class _Probe(DynamicMask):
    """DynamicMask that checks, at every update, what it changed against the weights and gradients it saw."""

    checks = 0

    def before_step(self, state):
        old = {n: m.clone() for n, m in state.mask.items()}
        w = {n: p.detach().clone() for n, p in prunable(state.model).items()}
        g = {n: p.grad.clone() for n, p in prunable(state.model).items()}
        skipped = super().before_step(state)
        if state.mask is old or all(torch.equal(old[n], state.mask[n]) for n in old):
            return skipped
        assert skipped  # a mask change replaces this iteration's optimizer step
        params = prunable(state.model)
        for n, new in state.mask.items():
            assert int(new.sum()) == int(old[n].sum())  # per-layer density unchanged
            grown, dropped = new & ~old[n], old[n] & ~new
            p = params[n]
            assert torch.count_nonzero(p.detach()[grown | ~new]) == 0  # grown start at 0, pruned are 0
            for v in state.optimizer.state[p].values():
                if torch.is_tensor(v) and v.shape == p.shape:
                    assert torch.count_nonzero(v[grown | ~new]) == 0  # momentum / Adam moments reset
            if grown.any() and self.rule is rigl_rule:  # grown: largest |dense gradient| of the candidates
                assert g[n].abs()[grown].min() >= g[n].abs()[~new].max()
            if dropped.any():  # dropped: among the k smallest |w| of the active weights
                k = self.history[-1]["drop_count"][n]
                assert int((w[n].abs()[old[n]] < w[n].abs()[dropped].max()).sum()) < k
        type(self).checks += 1
        return skipped


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("rule", [rigl_rule, set_rule])
def test_updates_keep_layer_density_and_grow_at_zero_with_reset_state(digits, rule, optimizer):
    model = models.build(_spec(digits), seed=0)
    counts = layer_counts(model, 0.9, "erk")
    mask = random_mask(model, counts, seed=1)
    hp = _hp(train={"optimizer": optimizer, "lr": 0.05 if optimizer == "sgd" else 2e-3})
    total = hp.train.total_iterations(len(digits.y_train))
    _Probe.checks = 0
    probe = _Probe(rule, hp.delta_t, hp.alpha, end_iteration(hp.t_end, total), seed=2)
    r = train(model, digits, hp.train, mask=mask, callbacks=[probe])
    assert _Probe.checks == len(update_iterations(total, hp.delta_t, end_iteration(hp.t_end, total))) == 8
    assert {n: int(m.sum()) for n, m in r.mask.items()} == counts
    assert any(not torch.equal(r.mask[n], mask[n]) for n in mask)
    for h in probe.history:
        assert h["dropped"] == h["grown"]
        assert all(h["dropped"][n] <= h["drop_count"][n] for n in counts)
        assert h["layer_density"] == {n: counts[n] / mask[n].numel() for n in counts}


def test_drop_fraction_follows_the_cosine_and_stops_at_t_end(digits):
    assert drop_fraction(0, 0.3, 100) == pytest.approx(0.3)
    assert drop_fraction(50, 0.3, 100) == pytest.approx(0.15)
    assert drop_fraction(100, 0.3, 100) == 0.0 and drop_fraction(150, 0.3, 100) == 0.0
    res = run(_spec(digits), digits, _hp(train={"iterations": 200}), seed=0)
    ups = res.history["updates"]
    t_end = res.history["t_end_iteration"]
    assert t_end == 150 and [u["iteration"] for u in ups] == list(range(10, 150, 10))
    for u in ups:
        f = 0.3 / 2 * (1 + math.cos(math.pi * u["iteration"] / t_end))
        assert u["drop_fraction"] == pytest.approx(f, abs=1e-12)
        active = {n: round(d * res.ticket.mask[n].numel()) for n, d in u["layer_density"].items()}
        dense = {n for n, m in res.ticket.mask.items() if bool(m.all())}
        assert u["drop_count"] == {n: 0 if n in dense else int(f * active[n]) for n in active}
    # No change after T_end: the mask at the last update is the final mask.
    assert res.history["mask_change"]["fraction_of_final_present"][-1] == 1.0
    assert res.history["mask_change"]["fraction_of_final_present"][0] < 0.9


def test_rigl_with_alpha_zero_is_static_sparse_bit_for_bit(digits):
    a = run(_spec(digits), digits, _hp(method="rigl", alpha=0.0), seed=4)
    b = run(_spec(digits), digits, _hp(method="static"), seed=4)
    assert all(torch.equal(a.ticket.mask[n], b.ticket.mask[n]) for n in a.ticket.mask)
    assert all(torch.equal(a.ticket.final[k], b.ticket.final[k]) for k in a.ticket.final)
    assert b.history["updates"] == [] and all(not any(u["dropped"].values()) for u in a.history["updates"])
    c = run(_spec(digits), digits, _hp(method="rigl"), seed=4)
    assert any(not torch.equal(c.ticket.mask[n], b.ticket.mask[n]) for n in b.ticket.mask)


def _reference_erk(shapes, density, dense=()):
    """The RigL paper's ERK, written from its description: eps * sum(raw * n) over sparse layers = kept budget;
    while the layer with the largest raw density exceeds 1 after scaling, make it dense and solve again."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    pool = [n for n in shapes if n not in dense]
    raw = {n: sum(shapes[n]) / sizes[n] for n in pool}
    full = set()
    while True:
        free = [n for n in pool if n not in full]
        eps = (density * sum(sizes[n] for n in pool) - sum(sizes[n] for n in full)) / sum(raw[n] * sizes[n]
                                                                                          for n in free)
        top = max(free, key=lambda n: raw[n])
        if eps * raw[top] <= 1:
            break
        full.add(top)
    return {n: 1.0 if n in full or n in dense else eps * raw[n] for n in shapes}


@pytest.mark.parametrize("name,width", [("lenet_300_100", 1.0), ("conv4", 0.25)])
@pytest.mark.parametrize("sparsity", [0.5, 0.9, 0.98])
@pytest.mark.parametrize("dense_output", [False, True])
def test_erk_counts_match_the_paper_definition(name, width, sparsity, dense_output):
    model = models.build(models.ModelSpec(name, (1, 28, 28), 10, width), seed=0)
    shapes = {n: tuple(w.shape) for n, w in prunable(model).items()}
    out = models.output_layer(model)
    counts = layer_counts(model, sparsity, "erk", dense_output)
    ref = _reference_erk(shapes, 1 - sparsity, dense=(out,) if dense_output else ())
    for n, s in shapes.items():
        assert abs(counts[n] - ref[n] * math.prod(s)) <= 1.0, n
    if dense_output:
        assert counts[out] == math.prod(shapes[out])
    if name == "lenet_300_100" and sparsity == 0.9:
        assert counts[out] == math.prod(shapes[out])  # ERK caps the small output layer at density 1


def test_uniform_densities_and_a_clear_error_for_an_emptied_layer():
    model = models.build(models.ModelSpec("lenet_300_100", (1, 28, 28), 10), seed=0)
    counts = layer_counts(model, 0.9, "uniform")
    assert counts == {"1.weight": 23520, "3.weight": 3000, "5.weight": 100}
    assert layer_counts(model, 0.9, "uniform", dense_output=True)["5.weight"] == 1000
    with pytest.raises(UsageError, match="leaves no weight in 5.weight"):
        layer_counts(model, 0.9999, "uniform")


def test_flops_counts_per_layer_and_the_dense_gradient_of_rigl():
    model = models.build(models.ModelSpec("lenet_300_100", (1, 28, 28), 10), seed=0)
    mask = random_mask(model, layer_counts(model, 0.9, "erk"), seed=0)
    static = flops(model, (1, 28, 28), mask, iterations=1000)
    assert {n: v["dense_flops"] for n, v in static["per_layer"].items()} == {
        "1.weight": 2 * 784 * 300, "3.weight": 2 * 300 * 100, "5.weight": 2 * 100 * 10}
    assert static["train_flops_ratio"] == pytest.approx(static["inference_flops_ratio"])
    assert static["inference_flops_ratio"] == pytest.approx(0.1, abs=2e-3)  # fc: FLOPs follow the weights
    rigl = flops(model, (1, 28, 28), mask, iterations=1000, mask_updates=7, dense_gradient=True)
    f_s, f_d = static["inference_flops"], static["dense_inference_flops"]
    assert rigl["train_flops"] == pytest.approx(3 * f_s * 1000 + 7 * (f_d - f_s), rel=1e-12)
    assert rigl["train_flops_ratio"] > static["train_flops_ratio"]
    twice = flops(model, (1, 28, 28), mask, iterations=2000, dense_iterations=1000)
    assert twice["train_flops_ratio"] == pytest.approx(2 * static["train_flops_ratio"])


def test_the_ticket_round_trips_and_rebuilds_the_trained_sparse_net(digits, tmp_path):
    from compress.train import evaluate

    res = run(_spec(digits), digits, _hp(method="set"), seed=0)
    t = Ticket.load(res.ticket.save(tmp_path / "t"))
    assert abs(t.density - 0.1) < 1e-3 and t.meta["method"] == "set" and t.meta["digest"] == _hp(method="set").digest()
    _, acc = evaluate(t.model("final"), digits.x_test, digits.y_test)
    assert acc == res.ticket.meta["metrics"]["test_acc"] > 0.5
    init = t.model("init")
    for n, w in prunable(init).items():
        assert torch.equal(w[t.mask[n]], t.init[n][t.mask[n]]) and torch.count_nonzero(w[~t.mask[n]]) == 0


def test_a_checkpoint_of_another_sparse_training_is_refused(digits, tmp_path):
    from compress.errors import RunDirError

    run(_spec(digits), digits, _hp(), seed=0, checkpoint_dir=tmp_path, checkpoint_every=50)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-000000100"]
    with pytest.raises(RunDirError, match="another sparse training"):
        run(_spec(digits), digits, _hp(sparsity=0.8), seed=0, checkpoint_dir=tmp_path, checkpoint_every=50)
