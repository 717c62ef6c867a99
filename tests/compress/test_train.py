import pytest
import torch

from compress import models
from compress.mask import Mask
from compress.train import TrainHparams, evaluate, train


def _half_mask(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Mask({n: torch.rand(w.shape, generator=g) > 0.5 for n, w in models.prunable(model).items()})


@pytest.mark.parametrize("opt,wd", [("adam", 0.0), ("sgd", 1e-3), ("adamw", 1e-2)])
def test_pruned_weights_stay_exactly_zero_including_optimizer_state(digits, opt, wd):
    model = models.build(models.ModelSpec("lenet_300_100", digits.input_shape, 10, 0.25), seed=0)
    mask = _half_mask(model)
    hp = TrainHparams(optimizer=opt, lr=0.05 if opt == "sgd" else 1e-3, weight_decay=wd, iterations=30,
                      batch_size=32, eval_every=10)
    train(model, digits, hp, mask=mask)
    weights = models.prunable(model)
    for name, m in mask.items():
        assert torch.count_nonzero(weights[name][~m]) == 0
        assert torch.count_nonzero(weights[name][m]) > 0.99 * int(m.sum())


def test_optimizer_state_is_masked(digits):
    """Momentum/Adam moments must hold zeros at pruned positions, else later updates would leak."""
    from compress.train.loop import _masked_params, _remask
    from compress.train.optim import make_optimizer

    model = models.build(models.ModelSpec("lenet_300_100", digits.input_shape, 10, 0.25), seed=0)
    mask = _half_mask(model)
    opt = make_optimizer(list(model.parameters()), TrainHparams(optimizer="sgd", lr=0.1))
    # Fill the momentum buffers with non-zeros everywhere (as if the mask had just shrunk).
    loss = model(digits.x_train[:16]).sum()
    loss.backward()
    opt.step()
    masked = _masked_params(model, mask)
    _remask(opt, masked)
    for p, m in masked:
        assert torch.count_nonzero(opt.state[p]["momentum_buffer"] * (1 - m)) == 0


def test_early_stop_iteration_is_argmin_of_validation_loss(digits):
    model = models.build(models.ModelSpec("lenet_300_100", digits.input_shape, 10, 0.25), seed=0)
    r = train(model, digits, TrainHparams(epochs=3, batch_size=64, eval_every=5))
    best = min(r.curve, key=lambda p: p["val_loss"])
    assert r.early_stop_iter == best["iteration"]
    assert r.iterations == 3 * -(-len(digits.y_train) // 64)
    assert r.curve[-1]["iteration"] == r.iterations
    assert 0.5 < r.test_acc <= 1.0  # it learns
    assert evaluate(model, digits.x_test, digits.y_test)[1] == pytest.approx(r.test_acc)


def test_training_is_reproducible(digits):
    hp = TrainHparams(iterations=20, batch_size=32, eval_every=10)
    outs = []
    for _ in range(2):
        model = models.build(models.ModelSpec("lenet_300_100", digits.input_shape, 10, 0.25), seed=3)
        train(model, digits, hp, seed=5)
        outs.append(model(digits.x_test[:8]))
    assert torch.equal(outs[0], outs[1])


def test_schedules():
    from compress.train.optim import lr_factor

    hp = TrainHparams(schedule="step", milestones=(0.5, 0.75), gamma=0.1)
    assert [lr_factor(hp, s, 100) for s in (0, 49, 50, 75)] == pytest.approx([1, 1, 0.1, 0.01])
    hp = TrainHparams(schedule="cosine", warmup_iterations=10)
    assert lr_factor(hp, 0, 100) == pytest.approx(0.1) and lr_factor(hp, 100, 100) == pytest.approx(0.0)
