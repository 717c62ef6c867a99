"""Stacked training: a ticket, its controls and other seeds trained as one batched network end bit for bit where
each would alone (weights, masks, curves, early stops, tickets and verdicts), pruned weights stay exactly zero,
and what cannot be stacked exactly (dropout, a forward mixing rows) or does not fit is not."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from compress import models
from compress.mask import Mask
from compress.train import TrainHparams, many, train
from compress.train.stack import stack
from compress.train.stacked import Member, train_stacked


def _spec(digits, name="lenet_300_100", width=0.25):
    return models.ModelSpec(name, digits.input_shape, 10, width)


def _mask(model, seed, density=0.3):
    g = torch.Generator().manual_seed(seed)
    return Mask({n: torch.rand(w.shape, generator=g) < density for n, w in models.prunable(model).items()})


ADAM = dict(optimizer="adam", weight_decay=1e-3)
SGD = dict(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)


# Two threads: MKL splits a batched matmul differently than one; the stack then loops where it must (stack._exact).
@pytest.mark.parametrize("optimizer,threads,iterations", [(ADAM, 1, 60), (SGD, 1, 60), (ADAM, 2, 12)])
def test_every_member_gets_bitwise_the_training_it_would_get_alone(digits, optimizer, threads, iterations):
    hp = TrainHparams(iterations=iterations, batch_size=64, eval_every=5, **optimizer)
    start = [models.build(_spec(digits), seed=s) for s in (0, 1, 0, 2)]  # ticket, reinit, random mask, other seed
    ticket_mask = _mask(start[0], 7)
    masks = [ticket_mask, ticket_mask, _mask(start[0], 8), None]
    seeds = [0, 0, 0, 2]  # the controls keep the ticket's data order, the other seed its own
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        alone = [copy.deepcopy(m) for m in start]
        ref = [train(m, digits, hp, mask=k, seed=s, snapshot_at=(3,))
               for m, k, s in zip(alone, masks, seeds, strict=True)]
        together = [copy.deepcopy(m) for m in start]
        got = train_stacked([Member(m, k, s, (3,)) for m, k, s in zip(together, masks, seeds, strict=True)],
                            digits, hp)
    finally:
        torch.set_num_threads(before)
    for a, b, ra, rb, k in zip(alone, together, ref, got, masks, strict=True):
        for name, w in a.state_dict().items():
            assert torch.equal(w, b.state_dict()[name]) and torch.equal(ra.snapshots[3][name], rb.snapshots[3][name])
        assert rb.curve == ra.curve and rb.early_stop_iter == ra.early_stop_iter and rb.iterations == ra.iterations
        assert (rb.test_acc, rb.test_loss, rb.val_acc, rb.val_loss) == (ra.test_acc, ra.test_loss, ra.val_acc,
                                                                        ra.val_loss)
        if k is not None:  # masked training keeps pruned weights exactly zero
            weights = models.prunable(b)
            assert all(float(weights[n].detach()[~m].abs().max()) == 0.0 for n, m in k.items() if (~m).any())
            assert rb.mask is not None and all(torch.equal(rb.mask[n], k[n]) for n in k)


@pytest.mark.parametrize("name,width", [("vgg11", 0.125), ("resnet20", 0.25), ("conv2", 0.25)])
def test_convolutions_and_batchnorm_stack_bitwise(digits, name, width):
    """Conv layers and BatchNorm (statistics and running averages per member) run per member with the kernels a
    lone model uses: the stacked training equals training alone bit for bit."""
    data = copy.copy(digits)
    for split in ("x_train", "x_val", "x_test"):
        setattr(data, split, getattr(digits, split).reshape(-1, 1, 8, 8))
    spec = models.ModelSpec(name, (1, 8, 8), 10, width)
    hp = TrainHparams(iterations=30, batch_size=32, eval_every=10)
    start = [models.build(spec, seed=s) for s in (0, 1)]
    masks = [_mask(start[0], 3, 0.5), None]
    alone = [copy.deepcopy(m) for m in start]
    ref = [train(m, data, hp, mask=k, seed=s) for m, k, s in zip(alone, masks, (0, 1), strict=True)]
    together = [copy.deepcopy(m) for m in start]
    got = train_stacked([Member(m, k, s) for m, k, s in zip(together, masks, (0, 1), strict=True)], data, hp)
    for a, b, ra, rb in zip(alone, together, ref, got, strict=True):
        assert all(torch.equal(w, b.state_dict()[key]) for key, w in a.state_dict().items())
        assert rb.curve == ra.curve and rb.test_acc == ra.test_acc


class _RowMixer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc(x - x.mean(0))  # batch statistics over the folded batch: not per member


def test_what_cannot_stack_exactly_trains_alone_with_the_reason(digits):
    hp = TrainHparams(epochs=1, batch_size=64)
    dropout = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Dropout(0.2), nn.Linear(32, 10))
    p = many.plan(dropout, 3, hp, digits)
    assert p.groups == [[0], [1], [2]] and "dropout" in p.notice
    p = many.plan(_RowMixer(), 3, hp, digits)
    assert p.groups == [[0], [1], [2]] and "mixes batch rows" in p.notice
    assert stack([_RowMixer(), _RowMixer()])[0] is not None  # without a probe the mixing would go unnoticed
    lenet = models.build(_spec(digits))
    assert many.plan(lenet, 3, hp, digits).groups == [[0, 1, 2]]
    assert many.plan(lenet, 3, hp, digits, stacked=False).groups == [[0], [1], [2]]
    conv = models.build(models.ModelSpec("conv2", (1, 28, 28), 10, 1.0))
    mnist_like = copy.copy(digits)
    mnist_like.x_train = torch.zeros(4, 1, 28, 28)
    p = many.plan(conv, 3, hp.replace(batch_size=60), mnist_like)
    assert p.groups == [[0], [1], [2]] and "fills this CPU" in p.notice


def test_the_memory_check_splits_the_stack_or_trains_alone(digits, monkeypatch):
    hp = TrainHparams(epochs=1, batch_size=64)
    lenet = models.build(_spec(digits))
    need = many.member_bytes(lenet, digits, hp.batch_size)
    params = sum(p.numel() * 4 for p in lenet.parameters())
    assert need > 5 * params  # weights, gradient, two moments and the mask, plus activations
    monkeypatch.setattr(many, "free_bytes", lambda device: int(2 * 3.5 * need))  # half of it holds 3 members
    p = many.plan(lenet, 7, hp, digits)
    assert sorted(i for g in p.groups for i in g) == list(range(7)) and max(map(len, p.groups)) == 3
    assert "3 groups of at most 3" in p.notice
    monkeypatch.setattr(many, "free_bytes", lambda device: int(2 * 1.5 * need))
    p = many.plan(lenet, 7, hp, digits)
    assert p.groups == [[i] for i in range(7)] and "more than 50% of the" in p.notice


def _untimed(obj):
    """`obj` without its wall times (the one thing stacking changes)."""
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if "wall" not in k}
    return [_untimed(v) for v in obj] if isinstance(obj, list) else obj


def _imp(out: Path, stacked: bool, tiny_imp: dict) -> Path:
    from pipelines import api

    rep = api.run("imp", out=out, scope={**tiny_imp["scope"], "seeds": 2}, train=tiny_imp["train"],
                  rounds=2, controls={"stacked": stacked})
    return Path(rep["run_dir"])


def test_imp_stacked_equals_one_after_another_and_resumes_per_seed(tmp_path, tiny_imp):
    seq, stk = _imp(tmp_path / "seq", False, tiny_imp), _imp(tmp_path / "stk", True, tiny_imp)
    for seed in (0, 1):
        for level in (0, 1, 2):
            d = f"seed-{seed}/level-{level}"
            assert (seq / d / "ticket.json").read_bytes() == (stk / d / "ticket.json").read_bytes()
            for f in ("init.safetensors", "mask.safetensors", "final.safetensors"):
                assert (seq / d / f).read_bytes() == (stk / d / f).read_bytes()
            for kind in ("reinit", "random"):
                if level:
                    a, b = (json.loads((r / d / f"control-{kind}.json").read_text()) for r in (seq, stk))
                    assert _untimed(a) == _untimed(b)
    va, vb = (json.loads((d / "levels.json").read_text()) for d in (seq, stk))
    assert _untimed(va) == _untimed(vb)
    # A control lost after its ticket was saved is trained again (alone now), to the same result.
    lost = stk / "seed-1/level-2/control-random.json"
    before, ticket = json.loads(lost.read_text()), (stk / "seed-1/level-2/ticket.json").stat().st_mtime_ns
    lost.unlink()
    (stk / "result.json").unlink()
    _imp(tmp_path / "stk", True, tiny_imp)
    after = json.loads(lost.read_text())
    assert _untimed(after) == _untimed(before)
    assert (stk / "seed-1/level-2/ticket.json").stat().st_mtime_ns == ticket
