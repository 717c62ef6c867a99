"""Structured pruning combined with the rest: unstructured pruning (IMP's step, prune-at-init) and binarization
of a shrunk network, each saved and reloaded as a normal ticket."""

import pytest
import torch

from compress import scoring
from compress.binarize import BinaryConv2d
from compress.binarize.convert import binarize_ticket
from compress.binarize.method import BinarizeHparams
from compress.finders.pai import PaiHparams, prune_at_init
from compress.mask import Mask
from compress.models import ModelSpec, build, prunable
from compress.pruning import PruneHparams, layer_fractions, prune
from compress.structured.l1 import l1
from compress.structured.settings import OneShotSettings
from compress.ticket import Ticket
from compress.train import TrainHparams, train

SHAPE = (1, 8, 8)
FAST = TrainHparams(epochs=0.5, batch_size=64, eval_every=50)


@pytest.fixture(scope="module")
def shrunk(digits):
    spec = ModelSpec("conv2", SHAPE, 10, 0.25)
    return l1(build(spec, seed=0), spec, digits, OneShotSettings(keep=0.5, finetune=FAST), seed=0)


def test_magnitude_pruning_of_a_shrunk_net_masks_its_own_weights(shrunk, digits, tmp_path):
    model = build(shrunk.spec)
    model.load_state_dict(shrunk.model.state_dict())
    full = Mask.ones_like(model)
    fractions = layer_fractions(model, PruneHparams(rate=0.5, output_rate_factor=1.0))
    mask = prune(model, full, scoring.get("magnitude")(model), fractions, "layerwise", input_shape=SHAPE)
    assert {n: tuple(m.shape) for n, m in mask.items()} == {n: tuple(w.shape) for n, w in prunable(model).items()}
    assert prunable(model)["2.weight"].shape == (8, 8, 3, 3) and mask.density == pytest.approx(0.5, abs=1e-3)
    train(model, digits, FAST, mask=mask, seed=0)  # one IMP round's training
    assert all(bool((w[~mask[n]] == 0).all()) for n, w in prunable(model).items())
    Ticket(shrunk.spec, shrunk.start, mask, model.state_dict(), meta={"dataset": "digits"}).save(tmp_path)
    back = Ticket.load(tmp_path)
    rebuilt = back.model()
    assert back.density == pytest.approx(mask.density) and back.mask.is_subset_of(full)
    assert all(bool((w[~mask[n]] == 0).all()) for n, w in prunable(rebuilt).items())
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(digits.x_test[:8]), model.eval()(digits.x_test[:8]))


def test_prune_at_init_scores_the_shrunk_architecture(shrunk, digits):
    model = build(shrunk.spec, seed=5)  # the shrunk architecture at a fresh init
    mask, _ = prune_at_init("snip", model, digits, PaiHparams(sparsity=0.8), seed=0)
    assert mask.keys() == prunable(model).keys() and mask.density == pytest.approx(0.2, abs=1e-3)
    assert mask["0.weight"].shape == (8, 1, 3, 3)


def test_binarizing_a_shrunk_ticket_keeps_its_shape(shrunk, digits, tmp_path):
    shrunk.ticket({"dataset": "digits"}).save(tmp_path / "structured")
    hp = BinarizeHparams(act="binary", train=TrainHparams(epochs=0.5, batch_size=64, eval_every=50))
    model, ticket = binarize_ticket(Ticket.load(tmp_path / "structured"), hp)
    r = train(model, digits, hp.train, mask=ticket.mask, seed=0)
    ticket.final = model.state_dict()
    ticket.save(tmp_path / "binary")
    back = Ticket.load(tmp_path / "binary")
    names = [t["name"] for t in back.spec.extra["transforms"]]
    rebuilt = back.model()
    assert names == ["shrink", "binarize"] and isinstance(rebuilt[2], BinaryConv2d)
    assert rebuilt[2].weight.shape == (8, 8, 3, 3) and r.test_acc > 0.1
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(digits.x_test[:8]), model.eval()(digits.x_test[:8]))
