import logging

import pytest
import torch

from compress import models, selection
from compress.errors import UsageError
from compress.mask import Mask
from compress.pruning import PruneHparams, layer_fractions, prune
from compress.sparsity import nm


def _conv(seed=0):
    return models.build(models.ModelSpec("conv2", (8, 8, 8), 10, 0.25), seed=seed)  # every input dim % 8 == 0


@pytest.mark.parametrize("pattern", ["2:4", "1:4", "4:8", "1:2"])
def test_every_nm_mask_passes_the_independent_checker(pattern):
    n, m = nm.parse(pattern)
    model = _conv()
    scores = {k: torch.rand_like(w) for k, w in models.prunable(model).items()}
    mask = prune(model, Mask.ones_like(model), scores, layer_fractions(model, PruneHparams()), pattern,
                 input_shape=(8, 8, 8))
    for name, w in models.prunable(model).items():
        dense_w = torch.randn_like(w).abs() + 0.1  # no accidental zeros: only the mask makes them
        report = nm.check(dense_w * mask[name], n, m, name)
        assert report.compliant and report.groups == w.numel() // m
        assert float(mask[name].float().mean()) == pytest.approx(n / m)
        # Within every group the kept scores are the top N.
        s, k = nm.to_groups(scores[name], m), nm.to_groups(mask[name], m)
        kept_min = torch.where(k, s, torch.inf).min(1).values
        pruned_max = torch.where(~k, s, -torch.inf).max(1).values
        assert bool((kept_min >= pruned_max).all())


def test_nm_respects_existing_mask_exclusions_and_is_idempotent():
    model = _conv(1)
    weights = models.prunable(model)
    start = Mask({k: torch.rand_like(w) > 0.3 for k, w in weights.items()})
    fr = layer_fractions(model, PruneHparams(exclude=("last",)))
    scores = {k: w.abs() for k, w in weights.items()}
    once = selection.get("2:4")(scores, start, fr)
    assert once.is_subset_of(start)
    last = models.output_layer(model)
    assert torch.equal(once[last], start[last])
    assert all(nm.check(once[k].float(), 2, 4).compliant for k in once if k != last)
    twice = selection.get("2:4")(scores, once, fr)
    assert all(torch.equal(once[k], twice[k]) for k in once)


def test_bad_patterns_are_refused():
    model = _conv()
    scores = {k: w.abs() for k, w in models.prunable(model).items()}
    fr = layer_fractions(model, PruneHparams())
    for bad in ("4:4", "5:4", "2:0", "0:4", "a:b"):
        with pytest.raises(UsageError, match="N:M pattern"):
            selection.get(bad)(scores, Mask.ones_like(model), fr)
    with pytest.raises(UsageError, match="1 <= N < M"):
        PruneHparams(selection="4:2")


def test_layer_without_pad_free_groups_fails_or_stays_dense(caplog):
    model = models.build(models.ModelSpec("conv2", (1, 8, 8), 10, 0.25), seed=0)  # first conv: 1 input channel
    scores = {k: w.abs() for k, w in models.prunable(model).items()}
    fr = layer_fractions(model, PruneHparams())
    with pytest.raises(UsageError, match=r"layer 0.weight .* 1 input channels, not a multiple of M=4.*--nm-policy"):
        prune(model, Mask.ones_like(model), scores, fr, "2:4")
    logging.getLogger("lottery").setLevel(logging.WARNING)
    with caplog.at_level(logging.WARNING, logger="lottery"):
        mask = prune(model, Mask.ones_like(model), scores, fr, "2:4", nm_policy="dense", input_shape=(1, 8, 8))
    assert bool(mask["0.weight"].all()) and "0.weight" in caplog.text
    assert all(nm.check(mask[k].float(), 2, 4).compliant for k in mask if k != "0.weight")
    with pytest.raises(UsageError, match="nm_policy"):
        PruneHparams(nm_policy="pad")
