"""Tickets are checked on load (digests, tensors, finiteness) and on rebuild (architecture); factories fail clearly."""

import hashlib
import json

import pytest
import torch

from compress import models
from compress.errors import RunDirError, ShapeMismatchError, UsageError
from compress.mask import Mask
from compress.ticket import TICKET_FILE, Ticket


def _ticket(d, seed=0, name="lenet_300_100", shape=(1, 8, 8), classes=10, width=0.25, final_scale=1.0):
    spec = models.ModelSpec(name, shape, classes, width)
    model = models.build(spec, seed=seed)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    final = {k: v * final_scale for k, v in init.items()}
    Ticket(spec, init, Mask.ones_like(model), final, meta={"dataset": "digits"}).save(d)
    return d


def _edit_json(d, fn):
    info = json.loads((d / TICKET_FILE).read_text())
    fn(info)
    (d / TICKET_FILE).write_text(json.dumps(info))


def test_ticket_json_records_a_digest_per_file(tmp_path):
    d = _ticket(tmp_path / "t")
    files = json.loads((d / TICKET_FILE).read_text())["files"]
    assert set(files) == {"init.safetensors", "mask.safetensors", "final.safetensors"}
    for name, rec in files.items():
        assert rec["sha256"] == hashlib.sha256((d / name).read_bytes()).hexdigest()
    assert files["final.safetensors"]["nonfinite"] == 0
    t = Ticket.load(d)
    assert t.source == d and torch.equal(t.model().state_dict()["1.weight"], t.final["1.weight"])


def test_final_swapped_in_from_another_model_is_refused(tmp_path):
    a, b = _ticket(tmp_path / "a", seed=0), _ticket(tmp_path / "b", seed=1)
    (a / "final.safetensors").write_bytes((b / "final.safetensors").read_bytes())
    swapped = (a / "final.safetensors").read_bytes()
    with pytest.raises(RunDirError) as err:
        Ticket.load(a)
    msg = str(err.value)
    assert "final.safetensors does not match the sha256 recorded" in msg and "swapped in from another" in msg
    assert (a / "final.safetensors").read_bytes() == swapped  # never deleted or rewritten


def test_old_tickets_without_digests_still_load(tmp_path):
    d = _ticket(tmp_path / "t")
    _edit_json(d, lambda info: info.pop("files"))
    t = Ticket.load(d)
    assert t.mask.density == 1.0 and t.model() is not None


def test_foreign_shapes_are_refused_even_without_digests(tmp_path):
    a = _ticket(tmp_path / "a")
    other = _ticket(tmp_path / "b", width=0.5)
    _edit_json(a, lambda info: info.pop("files"))
    (a / "final.safetensors").write_bytes((other / "final.safetensors").read_bytes())
    with pytest.raises(RunDirError, match="final.safetensors and init.safetensors hold different tensors"):
        Ticket.load(a)
    (a / "final.safetensors").write_bytes((tmp_path / "a" / "init.safetensors").read_bytes())
    (a / "mask.safetensors").write_bytes((other / "mask.safetensors").read_bytes())
    with pytest.raises(RunDirError, match="mask.safetensors entry '1.weight' .* comes from another model"):
        Ticket.load(a)


@pytest.mark.parametrize("field, value, fragment", [
    ("input_shape", [1, 28, 28], "size mismatch for 1.weight"),
    ("num_classes", 7, "size mismatch for 5.weight"),
    ("width", 0.5, "size mismatch for 1.weight"),
])
def test_ticket_json_that_does_not_fit_its_weights(tmp_path, field, value, fragment):
    d = _ticket(tmp_path / "t")
    _edit_json(d, lambda info: info["spec"].__setitem__(field, value))
    t = Ticket.load(d)  # the weight files are intact: their digests match
    with pytest.raises(RunDirError) as err:
        t.model()
    msg = str(err.value)
    assert fragment in msg and f"{d}/final.safetensors does not fit lenet_300_100" in msg and "\n" not in msg


def test_input_shape_the_architecture_cannot_take(tmp_path, monkeypatch):
    (tmp_path / "flatnets.py").write_text(
        "import torch\n"
        "def flat(num_classes):\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, num_classes))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    d = _ticket(tmp_path / "t", name="flatnets:flat", width=1.0)
    _edit_json(d, lambda info: info["spec"].__setitem__("input_shape", [1, 4, 4]))
    with pytest.raises(RunDirError, match=r"cannot build flatnets:flat .*\(1, 4, 4\)"):
        Ticket.load(d).model()


def test_malformed_spec_is_named(tmp_path):
    d = _ticket(tmp_path / "t")
    _edit_json(d, lambda info: info["spec"].pop("num_classes"))
    with pytest.raises(RunDirError, match="malformed 'spec'"):
        Ticket.load(d)


def test_non_finite_weights_are_recorded_and_refused(tmp_path):
    d = _ticket(tmp_path / "t", final_scale=float("nan"))
    files = json.loads((d / TICKET_FILE).read_text())["files"]
    assert files["final.safetensors"]["nonfinite"] > 0 and files["init.safetensors"]["nonfinite"] == 0
    with pytest.raises(RunDirError, match=r"final.safetensors holds \d+ non-finite values .* diverged"):
        Ticket.load(d)


# --- `module:factory` models ----------------------------------------------------------------------------------

FACTORIES = '''
import torch
def raises(num_classes):
    raise RuntimeError("no GPU found")
def not_a_module(num_classes):
    return "a string"
def wrong_classes(num_classes):
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
def wrong_input(num_classes):
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(100, num_classes))
def good(num_classes, input_shape, width):
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, num_classes))
'''


@pytest.mark.parametrize("factory, error, fragments", [
    ("raises", UsageError, ["factory 'userfacts:raises' raised RuntimeError", "no GPU found", "num_classes=10"]),
    ("not_a_module", UsageError, ["factory 'userfacts:not_a_module' returned str, not a torch.nn.Module"]),
    ("wrong_classes", ShapeMismatchError, ["'userfacts:wrong_classes' outputs (2, 3)", "(2, 10)"]),
    ("wrong_input", ShapeMismatchError, ["'userfacts:wrong_input' cannot take samples of shape (1, 8, 8)"]),
])
def test_factory_failures_name_the_factory(tmp_path, monkeypatch, factory, error, fragments):
    (tmp_path / "userfacts.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(error) as err:
        models.build(models.ModelSpec(f"userfacts:{factory}", (1, 8, 8), 10), seed=0)
    assert all(f in str(err.value) for f in fragments), str(err.value)
    assert "\n" not in str(err.value)
    assert models.build(models.ModelSpec("userfacts:good", (1, 8, 8), 10), seed=0) is not None


def test_factory_module_that_fails_to_import(tmp_path, monkeypatch):
    (tmp_path / "brokenmod.py").write_text("raise ValueError('config missing')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UsageError, match="cannot import 'brokenmod' .* ValueError: config missing"):
        models.build(models.ModelSpec("brokenmod:net", (1, 8, 8), 10))
