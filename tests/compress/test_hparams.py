from dataclasses import dataclass

import pytest

from compress.errors import UsageError
from compress.finders.imp import ImpHparams
from compress.hparams import Hparams, setting
from compress.method import Scope
from compress.settings import TrainHparams
from pipelines import registry
from pipelines.spec import resolve_settings


def _imp(model: str = "lenet_300_100", **tree) -> ImpHparams:
    return resolve_settings(registry.get("imp"), Scope(model=model), tree)


def test_digests_are_pinned():
    # Literal values: a change here silently orphans every existing run directory.
    assert ImpHparams().digest() == "4fcd62c73e"
    assert ImpHparams(rounds=3).digest() == "4490d93415"
    assert ImpHparams(train=TrainHparams(lr=0.1)).digest() == "e8bc39bf31"
    assert _imp("conv4").digest() == "d5585bd68b"
    assert Scope().digest() == "a0b7775228"


def test_digest_ignores_defaults_and_locations():
    assert ImpHparams(rounds=12).digest() == ImpHparams().digest()
    assert Scope(data_root="/somewhere", seeds=3, threads=1).digest() == Scope().digest()
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
    hp = ImpHparams().updated({"train.lr": "0.05", "prune.exclude": "first,last"})
    assert hp.train.lr == 0.05 and hp.prune.exclude == ("first", "last")
    with pytest.raises(UsageError, match="unknown setting 'train.lrr'.*lr"):
        ImpHparams().updated({"train.lrr": "1"})
    with pytest.raises(UsageError, match="must be a number"):
        ImpHparams().updated({"train.lr": "fast"})
    with pytest.raises(UsageError, match="must be an integer"):
        ImpHparams().updated({"rounds": "2.5"})
    with pytest.raises(UsageError, match="unknown setting 'nope'"):
        ImpHparams().updated({"nope": 1})
    with pytest.raises(UsageError, match="'train' is a group of settings"):
        ImpHparams().updated({"train": 3})


def test_rules_that_tie_two_fields_see_both_new_values():
    hp = ImpHparams().updated({"rewind": "iter", "rewind_iter": 5})  # one at a time, the first would be refused
    assert hp.rewind == "iter" and hp.rewind_iter == 5
    with pytest.raises(UsageError, match="rewind 'iter' needs rewind_iter >= 1"):
        ImpHparams().updated({"rewind": "iter"})


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1, 1.5])
def test_rate_outside_open_unit_interval_is_refused(rate):
    with pytest.raises(UsageError, match=r"rate must be in \(0.0, 1.0\)"):
        _imp(prune={"rate": rate})


def test_rounds_below_one_and_bad_choices_refused():
    with pytest.raises(UsageError, match="rounds must be >= 1"):
        _imp(rounds=0)
    with pytest.raises(UsageError, match="rewind must be one of init, iter, lr; got 'never'"):
        _imp(rewind="never")


def test_recommended_lr_for_conv_nets_unless_given():
    assert _imp("conv4").train.lr == 3e-4
    assert _imp("conv4", train={"lr": 0.01}).train.lr == 0.01
    assert _imp("conv4", **{"train.lr": 0.01}).train.lr == 0.01
    # only groups marked model_defaults take it: binarize's finetuning keeps its own rate
    assert resolve_settings(registry.get("binarize"), Scope(model="conv4"), {}).train.lr == 1e-3


def test_setting_metadata_rules_apply_everywhere():
    @dataclass(frozen=True)
    class S(Hparams):
        k: str = setting("a", choices=("a", "b"), help="k")
        x: float = setting(0.5, lo=0.0, hi=1.0, lo_open=True, help="x")
        n: int = setting(1, lo=1, help="n")

    with pytest.raises(UsageError, match="k must be one of a, b; got 'c'"):
        S(k="c")
    with pytest.raises(UsageError, match=r"x must be in \(0.0, 1.0\], got 0.0"):
        S(x=0.0)
    with pytest.raises(UsageError, match="n must be >= 1, got 0"):
        S(n=0)
