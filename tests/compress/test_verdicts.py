"""A level is never `winning` (nor selected) at chance accuracy or with non-finite weights."""

import json
import math

import pytest
import torch

from compress import models
from compress.finders.controls import control_path
from compress.io import load_json
from compress.mask import Mask
from compress.report.levels import collect
from compress.settings import ControlHparams
from compress.ticket import TICKET_FILE, Ticket

SPEC = models.ModelSpec("lenet_300_100", (1, 8, 8), 4, 0.25)


def _level(run, level, acc, loss=0.5, nan_weights=False, controls=None, extra_metrics=None, seed=0):
    d = run / f"seed-{seed}" / f"level-{level}"
    model = models.build(SPEC, seed=0)
    state = model.state_dict()
    final = {k: torch.full_like(v, math.nan) for k, v in state.items()} if nan_weights else state
    metrics = {"test_acc": acc, "test_loss": loss, "val_acc": acc, "val_loss": loss, "early_stop_iter": 10,
               "iterations": 20, "wall_s": 0.1, **(extra_metrics or {})}
    Ticket(SPEC, state, Mask.ones_like(model), final, meta={"level": level, "metrics": metrics}).save(d)
    for kind, value in (controls or {}).items():
        control_path(d, kind).write_text(json.dumps({"test_acc": value}))
    return d


def _verdicts(run, controls=()):
    rep = collect(run, ControlHparams(controls=controls))
    return [r["verdict"] for r in rep["levels"]], rep["selected_level"]


def test_the_issue_case_nan_weights_at_chance_is_diverged_not_winning(tmp_path):
    """NaN in the data made every weight NaN; both levels score chance (25%). Before: level 1 'winning'."""
    _level(tmp_path, 0, 0.25, math.nan, nan_weights=True)
    _level(tmp_path, 1, 0.25, math.nan, nan_weights=True)
    verdicts, selected = _verdicts(tmp_path)
    assert verdicts == ["diverged", "diverged"] and selected == 0
    info = load_json(tmp_path / "seed-0" / "level-1" / TICKET_FILE)
    assert info["meta"]["metrics"]["test_loss"] is None  # strict JSON: null, not a bare NaN token


def test_nan_weights_with_a_good_looking_accuracy_are_never_winning(tmp_path):
    _level(tmp_path, 0, 0.90)
    _level(tmp_path, 1, 0.95, nan_weights=True, controls={"reinit": 0.5})
    verdicts, selected = _verdicts(tmp_path, ("reinit",))
    assert verdicts == ["dense", "diverged"] and selected == 0


def test_chance_accuracy_is_never_winning(tmp_path):
    _level(tmp_path, 0, 0.255)
    _level(tmp_path, 1, 0.26)  # >= dense - tolerance, and no controls: 'winning' before
    verdicts, selected = _verdicts(tmp_path)
    assert verdicts == ["at-chance", "at-chance"] and selected == 0


def test_recorded_majority_rate_is_the_chance_level(tmp_path):
    _level(tmp_path, 0, 0.61, extra_metrics={"chance_acc": 0.6})
    _level(tmp_path, 1, 0.615, extra_metrics={"chance_acc": 0.6})
    assert _verdicts(tmp_path)[0] == ["at-chance", "at-chance"]


def test_old_ticket_with_a_nan_loss_is_diverged(tmp_path):
    d = _level(tmp_path, 1, 0.5)
    _level(tmp_path, 0, 0.9)
    info = json.loads((d / TICKET_FILE).read_text())
    info.pop("files")
    info["meta"]["metrics"]["test_loss"] = math.nan  # written by the old, non-strict writer
    (d / TICKET_FILE).write_text(json.dumps(info))
    assert _verdicts(tmp_path)[0] == ["dense", "diverged"]


@pytest.mark.parametrize("controls, acc, expected", [
    ({}, 0.90, "winning"),
    ({"reinit": 0.80}, 0.90, "winning"),
    ({"reinit": 0.90}, 0.90, "matches-dense"),
    ({}, 0.50, "below-dense"),
])
def test_real_results_keep_their_verdicts(tmp_path, controls, acc, expected):
    _level(tmp_path, 0, 0.90)
    _level(tmp_path, 1, acc, controls=controls)
    verdicts, selected = _verdicts(tmp_path, tuple(controls))
    assert verdicts == ["dense", expected] and selected == (1 if expected in ("winning", "matches-dense") else 0)
