from dataclasses import dataclass

import pytest

from compress.errors import UsageError
from compress.finders import ImpHparams, make_hparams
from compress.finders.hparams import DataHparams
from compress.hparams import Hparams
from compress.train import TrainHparams


def test_digests_are_pinned():
    # Literal values: a change here silently orphans every existing run directory.
    assert ImpHparams().digest() == "4fcd62c73e"
    assert ImpHparams(rounds=3).digest() == "4490d93415"
    assert ImpHparams(train=TrainHparams(lr=0.1)).digest() == "e8bc39bf31"
    assert make_hparams("imp", {"model.model": "conv4"}).digest() == "9143ed9011"


def test_digest_ignores_defaults_and_locations():
    assert ImpHparams(rounds=12).digest() == ImpHparams().digest()
    assert ImpHparams(data=DataHparams(data_root="/somewhere")).digest() == ImpHparams().digest()
    assert ImpHparams(train=TrainHparams(eval_every=7)).digest() == ImpHparams().digest()


def test_adding_a_neutral_field_keeps_digests():
    @dataclass(frozen=True)
    class Old(Hparams):
        a: int = 1

    @dataclass(frozen=True)
    class New(Hparams):
        a: int = 1
        b: float = 0.5

    Old.__name__ = New.__name__ = "Same"
    assert Old(a=2).digest() == New(a=2).digest()
    assert New(a=2, b=0.7).digest() != Old(a=2).digest()


def test_settings_are_coerced_and_checked():
    hp = ImpHparams().with_setting("train.lr", "0.05").with_setting("prune.exclude", "first,last")
    assert hp.train.lr == 0.05 and hp.prune.exclude == ("first", "last")
    with pytest.raises(UsageError, match="unknown setting 'train.lrr'.*lr"):
        ImpHparams().with_setting("train.lrr", "1")
    with pytest.raises(UsageError, match="must be a number"):
        ImpHparams().with_setting("train.lr", "fast")
    with pytest.raises(UsageError, match="must be an integer"):
        ImpHparams().with_setting("rounds", "2.5")
    with pytest.raises(UsageError, match="unknown setting 'nope'"):
        ImpHparams.from_dict({"nope": 1})


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1, 1.5])
def test_rate_outside_open_unit_interval_is_refused(rate):
    with pytest.raises(UsageError, match=r"rate must be in \(0.0, 1.0\)"):
        make_hparams("imp", {"prune.rate": rate})


def test_rounds_below_one_refused():
    with pytest.raises(UsageError, match="rounds must be >= 1"):
        make_hparams("imp", {"rounds": 0})


def test_recommended_lr_for_conv_nets_unless_given():
    assert make_hparams("imp", {"model.model": "conv4"}).train.lr == 3e-4
    assert make_hparams("imp", {"model.model": "conv4", "train.lr": 0.01}).train.lr == 0.01
