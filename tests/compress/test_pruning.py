import pytest
import torch

from compress import models, scoring
from compress.errors import UsageError
from compress.mask import Mask
from compress.pruning import PruneHparams, layer_fractions, prune
from compress.sparsity import nm


def _lenet(seed=0):
    return models.build(models.ModelSpec("lenet_300_100", (1, 8, 8), 10, 0.5), seed=seed)


def test_layerwise_prunes_exact_fraction_and_output_at_half_rate():
    model = _lenet()
    mask = Mask.ones_like(model)
    hp = PruneHparams(rate=0.2)
    fr = layer_fractions(model, hp)
    new = prune(model, mask, scoring.get("magnitude")(model), fr, "layerwise")
    for name, m in new.items():
        target = 1 - fr[name]
        assert abs(float(m.float().mean()) - target) <= max(1e-4, 0.5 / m.numel())
    assert fr[models.output_layer(model)] == pytest.approx(0.1)


def test_magnitude_keeps_every_larger_weight():
    model = _lenet()
    mask = Mask.ones_like(model)
    new = prune(model, mask, scoring.get("magnitude")(model), layer_fractions(model, PruneHparams(rate=0.5)))
    for name, w in models.prunable(model).items():
        kept, pruned = w.abs()[new[name]], w.abs()[~new[name]]
        assert kept.min() >= pruned.max()


def test_global_threshold_is_shared_across_layers():
    model = _lenet()
    mask = Mask.ones_like(model)
    new = prune(model, mask, scoring.get("magnitude")(model), layer_fractions(model, PruneHparams(rate=0.6)),
                "global")
    weights = models.prunable(model)
    kept = torch.cat([weights[n].abs()[new[n]] for n in new])
    pruned = torch.cat([weights[n].abs()[~new[n]] for n in new])
    assert kept.min() >= pruned.max()
    assert abs(1 - new.density - 0.6) < 1e-4


def test_masks_only_shrink_over_rounds():
    model = _lenet()
    mask = Mask.ones_like(model)
    for _ in range(4):
        # Re-drawing weights each round: selection must still never revive a pruned weight.
        scores = {n: torch.rand_like(w) for n, w in models.prunable(model).items()}
        new = prune(model, mask, scores, layer_fractions(model, PruneHparams(rate=0.3)))
        assert new.is_subset_of(mask) and new.kept < mask.kept
        mask = new


def test_exclude_and_layer_rates():
    model = _lenet()
    hp = PruneHparams(rate=0.2, exclude=("first",), layer_rates=("3.weight=0.5",))
    fr = layer_fractions(model, hp)
    assert fr["1.weight"] == 0.0 and fr["3.weight"] == 0.5
    with pytest.raises(UsageError, match="matches no prunable layer.*1.weight"):
        layer_fractions(model, PruneHparams(exclude=("fc9",)))
    with pytest.raises(UsageError, match="NAME=RATE"):
        PruneHparams(layer_rates=("3.weight",))


def test_model_without_prunable_layers_is_refused():
    with pytest.raises(UsageError, match="no conv or linear layer"):
        layer_fractions(torch.nn.Sequential(torch.nn.ReLU()), PruneHparams())


def test_nm_checker_on_hand_made_tensors():
    ok = torch.tensor([[1.0, 0, 2, 0, 0, 3, 0, 4]])
    bad = torch.tensor([[1.0, 1, 2, 0, 0, 3, 0, 4]])
    assert nm.check(ok, 2, 4).compliant
    r = nm.check(bad, 2, 4)
    assert not r.compliant and r.violating_groups == 1 and r.groups == 2
    # Conv: groups run along input channels at each kernel position (KRSC), not along the kernel window.
    conv = torch.zeros(1, 4, 1, 2)
    conv[0, :2, 0, 0] = 1  # 2 of 4 channels at position (0, 0): compliant
    conv[0, 0, 0, 1] = 1
    assert nm.check(conv, 2, 4).compliant
    conv[0, 1:4, 0, 1] = 1  # 4 of 4 channels at position (0, 1)
    assert nm.check(conv, 2, 4).violating_groups == 1
    assert not nm.check(torch.ones(3, 6), 2, 4).groupable
    g = torch.randn(8, 4, 3, 3)
    assert torch.equal(nm.from_groups(nm.to_groups(g, 4), tuple(g.shape)), g)
    for bad_pattern in ("4:4", "0:4", "2:1", "x"):
        with pytest.raises(UsageError):
            nm.parse(bad_pattern)
