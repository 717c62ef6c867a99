from pathlib import Path

import pytest
import torch
from torch import nn

from compress.binarize import BinaryConv2d, BinaryLinear, binarize_model
from compress.binarize.summary import layer_bits, summarize, summary_text
from compress.errors import RunDirError, UsageError
from compress.models import ModelSpec, build
from compress.ticket import Ticket
from compress.train import predict
from pipelines import api


@pytest.fixture(scope="module")
def imp_run(tmp_path_factory):
    return api.run("imp", out=tmp_path_factory.mktemp("imp"), scope={"model": "conv2", "width": 0.25,
                   "dataset": "digits"}, train={"iterations": 4, "batch_size": 64}, rounds=1,
                   controls={"controls": []})


def _binarize(source, **settings):
    return api.run("binarize", input=source, level=1 if (source / "seed-0").is_dir() else None, **settings)


def test_binarized_imp_ticket_is_ternary_finetuned_and_reloads(imp_run, digits):
    run_dir = Path(imp_run["run_dir"])
    report = _binarize(run_dir, train={"iterations": 5, "batch_size": 64, "eval_every": 5})
    assert report["details"]["binary"]["ternary"] is True and report["settings"]["act"] == "binary"
    ticket = Ticket.load(api.artifact(report, "binary_ticket"))
    model = ticket.model("final")
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert [type(m) for m in layers] == [nn.Conv2d, BinaryConv2d, BinaryLinear, BinaryLinear, nn.Linear]
    assert [m.binary_act for m in layers[1:4]] == [True, True, True]
    # sign(relu(x)) would be constant: the ReLUs feeding binary-act layers are gone, the float output's stays
    assert [i for i, m in enumerate(model) if isinstance(m, nn.ReLU)] == [9]
    # pruned weights stay exactly zero through finetuning, so the binary weights are ternary
    for name, m in model.named_modules():
        if isinstance(m, (BinaryConv2d, BinaryLinear)):
            mask = ticket.mask[f"{name}.weight"]
            assert torch.equal(m.keep, mask) and not bool(mask.all())
            w = m.binary_weight().detach()
            assert bool((w[~mask] == 0).all()) and bool((w[mask] != 0).all())
            assert ticket.precision[f"{name}.weight"] == 1
    assert ticket.precision["0.weight"] == 32
    x = digits.x_test[:40]
    assert torch.equal(predict(model, x), predict(Ticket.load(api.artifact(report, "ticket")).model("final"), x))
    again = _binarize(run_dir, train={"iterations": 5, "batch_size": 64, "eval_every": 5})
    assert again["resumed"] and again["metrics"]["test_acc"] == report["metrics"]["test_acc"]  # finished: read back
    assert report["metrics"]["binary_layer_bits_per_weight"] < 2.5  # ternary: keep map + sign bits (+ scales)


def test_summary_counts_stored_bits_exactly():
    lin = BinaryLinear(6, 3, scale="channel")
    lin.keep[0, :3] = False
    row = layer_bits(lin)
    # 18-position keep map + 15 kept signs + 3 channel scales and 3 biases in float32
    assert row["bits"] == 18 + 15 + 32 * 6 and row["ternary"] and row["kept"] == 15
    dense = BinaryConv2d(2, 4, 3, bias=False, scale="layer")
    assert layer_bits(dense)["bits"] == 72 + 32
    s = summarize(nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), lin))
    assert s["bits_total"] == 32 * (30 + 12) + row["bits"] and s["float32_bits_total"] == 32 * (30 + 12 + 21)
    assert "ternary" in summary_text(s)


def test_unknown_layers_are_named_with_the_supported_ones():
    model = nn.Sequential(nn.Conv1d(1, 4, 3), nn.Flatten(), nn.Linear(8, 8), nn.Embedding(3, 2), nn.Linear(8, 2))
    with pytest.raises(UsageError, match=r"0 \(Conv1d\).*3 \(Embedding\).*Supported: Conv2d"):
        binarize_model(model, ["2"])
    with pytest.raises(UsageError, match="no such layer"):
        binarize_model(nn.Sequential(nn.Linear(2, 2)), ["fc9"])


def test_binary_activation_refused_where_it_cannot_work():
    model = nn.Sequential(nn.Linear(4, 8), nn.Softmax(dim=1), nn.Linear(8, 3))
    with pytest.raises(UsageError, match="layer '2'.*Softmax"):
        binarize_model(model, ["0", "2"], act="binary")

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    with pytest.raises(UsageError, match=r"layer 'b'.*relu\(\.\.\.\) called in a forward.*nn.ReLU module"):
        binarize_model(Block(), ["a", "b"], act="binary")
    binarize_model(Block(), ["a", "b"], act="float")  # binary weights alone are fine there


def test_run_dir_without_finished_ticket(tmp_path):
    (tmp_path / "seed-0" / "level-0").mkdir(parents=True)
    with pytest.raises(RunDirError, match="no finished ticket"):
        api.run("binarize", input=tmp_path)


def test_already_binary_ticket_is_refused(imp_run):
    report = _binarize(Path(imp_run["run_dir"]), train={"iterations": 2, "batch_size": 64})
    with pytest.raises(UsageError, match="already binary"):
        api.run("binarize", input=api.artifact(report, "ticket"))


def test_binary_activations_are_placed_inside_residual_blocks():
    spec = ModelSpec("resnet20", (1, 8, 8), 10, 0.5)
    model = binarize_model(build(spec, seed=0), act="binary")
    binary = {n: m for n, m in model.named_modules() if isinstance(m, BinaryConv2d)}
    # every conv but the stem: 18 block convs and the 2 projection shortcuts, all signing their inputs
    assert len(binary) == 20 and all(m.binary_act for m in binary.values())
    assert "layers.3.shortcut.0" in binary
    # the ReLUs feeding them (stem, inside and after each block) became Identity: sign is the nonlinearity
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    assert isinstance(model.layers[0].relu, nn.Identity)
    assert torch.isfinite(model(torch.randn(2, 1, 8, 8))).all()


def test_binary_activation_walks_through_reshapes_in_a_forward():
    class ViewNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c, self.r, self.a, self.b = nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Linear(4 * 6 * 6, 8), nn.Linear(8, 3)

        def forward(self, x):
            return self.b(self.a(self.r(self.c(x)).view(x.size(0), -1)))

    model = binarize_model(ViewNet(), ["a", "b"], act="binary")
    assert isinstance(model.r, nn.Identity) and model.a.binary_act and model.b.binary_act
