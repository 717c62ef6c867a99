"""`gfs` as a method: its run layout, controls and verdict, sizes against the dense net, and the shrunk ticket
going through the later stages unchanged (ONNX export + bench against the baseline, IMP and pruning at init on
the shrunk net, one-shot prune + finetune, binarize + LCE)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import onnx
import pytest
import torch
from typer.testing import CliRunner

from compress.errors import UsageError
from compress.finders.gfs import GfsHparams
from compress.models import count, prunable
from compress.structured.settings import VerdictSettings
from compress.ticket import Ticket
from pipelines import api
from pipelines.cli import app
from pipelines.runner import Pipeline

SCOPE = {"model": "lenet_300_100", "dataset": "digits", "width": 0.25, "threads": 1}
TRAIN = {"epochs": 1, "batch_size": 64, "eval_every": 5}
GFS = {"keep": 0.5, "candidates": 10, "eval_samples": 200, "train": TRAIN, "finetune": TRAIN,
       "layer_train": {"epochs": 0.5, "batch_size": 64}}


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    """dense -> gfs -> ONNX -> bench -> TensorRT -> IMP on the shrunk net -> SNIP at init of the shrunk net."""
    raw = {"pipeline": {"name": "gfs-chain", **SCOPE}, "stages": [
        {"kind": "dense", "train": TRAIN},
        {"kind": "gfs", **GFS, "gate": {"max_acc_drop": 0.5}},
        {"kind": "export_onnx"},
        {"kind": "bench", "artifact": "onnx", "iterations": 5, "warmup": 1, "batch_sizes": [64]},
        {"kind": "export_tensorrt"},  # no GPU here: its CPU-side part (checks, build script), then skipped
        {"kind": "imp", "from_ticket": True, "rounds": 1, "train": TRAIN, "controls": {"controls": ["random"]}},
        {"kind": "snip", "from_ticket": True, "trained": False, "sparsity": 0.5},
    ]}
    rep = Pipeline(raw).run(tmp_path_factory.mktemp("gfs"))
    assert rep["status"] == "passed", [(s["name"], s["status"], s.get("reason")) for s in rep["stages"]]
    root = Path(rep["run_dir"])
    return {s["name"]: {**s, "path": root / s["dir"], "art": {k: root / v for k, v in s["artifacts"].items()}}
            for s in rep["stages"]}


def test_gfs_writes_dense_level_shrunk_ticket_and_three_controls(pipe):
    gfs, dense = pipe["gfs"], pipe["dense"]
    d = gfs["path"]
    level0, level1 = d / "seed-0" / "level-0", d / "seed-0" / "level-1"
    # Same training settings and seed as the dense stage: its network is level 0, copied, not trained again.
    assert (level0 / "final.safetensors").read_bytes() == (dense["art"]["model"] / "final.safetensors").read_bytes()
    assert sorted(p.name for p in level1.glob("control-*.json")) == [
        "control-l1.json", "control-random.json", "control-small_dense.json"]
    ticket = Ticket.load(gfs["art"]["ticket"])
    assert gfs["art"]["ticket"].resolve() == level1.resolve()
    assert [t["name"] for t in ticket.spec.extra["transforms"]] == ["shrink"]
    small, large = ticket.model(), Ticket.load(level0).model()
    assert {n: tuple(w.shape) for n, w in prunable(small).items()} == {
        "1.weight": (38, 64), "3.weight": (12, 38), "5.weight": (10, 12)}  # 75 -> 38 and 25 -> 12 units
    assert gfs["details"]["widths"] == {"1": {"dense": 75, "kept": 38}, "3": {"dense": 25, "kept": 12}}
    info = json.loads((level1 / "ticket.json").read_text())
    assert info["meta"]["method"] == "gfs" and not any("wall" in k or k.endswith("_s") for k in info["meta"])
    m = gfs["metrics"]
    assert m["density"] == 1.0 and m["parameters"] == count(small)["parameters"]
    assert m["params_ratio"] == count(small)["parameters"] / count(large)["parameters"] < 0.6
    assert 0 < m["flops_ratio"] < 0.6 and m["storage_bytes"] == 4 * m["parameters"]  # float32, no mask bits
    assert m["test_acc"] == ticket.metrics["test_acc"] and m["dense_test_acc"] == dense["metrics"]["test_acc"]


def test_verdict_is_winning_only_when_every_control_is_beaten(pipe):
    gfs = pipe["gfs"]
    level1 = gfs["path"] / "seed-0" / "level-1"
    accs = {k: json.loads((level1 / f"control-{k}.json").read_text())["test_acc"] for k in ("l1", "random",
                                                                                            "small_dense")}
    for k, acc in accs.items():
        assert gfs["metrics"][f"{k}_test_acc"] == acc
    assert gfs["metrics"]["winning"] == all(gfs["metrics"]["test_acc"] > a for a in accs.values())
    table = {r["kind"]: r for r in gfs["details"]["controls"]}
    assert {k: r["beats"] for k, r in table.items()} == {k: gfs["metrics"]["test_acc"] > a for k, a in accs.items()}
    assert gfs["details"]["lost_to"] == sorted(k for k, r in table.items() if not r["beats"])


def test_shrunk_ticket_exports_and_bench_times_it_against_the_dense_baseline(pipe):
    onnx_stage, bench = pipe["export_onnx"], pipe["bench"]
    assert onnx_stage["metrics"]["parity_agreement"] == 1.0
    shapes = {i.name: tuple(i.dims) for i in onnx.load(onnx_stage["art"]["onnx"]).graph.initializer}
    assert shapes["3.weight"] == (12, 38)
    trt = pipe["export_tensorrt"]
    assert trt["status"] == "skipped" and (trt["path"] / "build_engine.sh").is_file()
    m = bench["metrics"]
    assert m["latency_ratio"] > 0 and m["baseline_latency_ms_p50"] > 0  # the dense baseline, same target and run
    assert m["latency_ratio"] == pytest.approx(m["latency_ms_p50"] / m["baseline_latency_ms_p50"])


def test_imp_and_snip_start_from_the_shrunk_network(pipe):
    gfs_ticket = Ticket.load(pipe["gfs"]["art"]["ticket"])
    imp = pipe["imp"]
    src = imp["inputs"][0]
    assert src["kind"] == "ticket" and Path(src["path"]).resolve() == pipe["gfs"]["art"]["ticket"].resolve()
    level0 = imp["path"] / "seed-0" / "level-0"
    assert (level0 / "final.safetensors").read_bytes() == (
        pipe["gfs"]["art"]["ticket"] / "final.safetensors").read_bytes()
    ticket = Ticket.load(imp["art"]["ticket"])
    assert ticket.spec == gfs_ticket.spec and ticket.meta["level"] == imp["metrics"]["level"]
    level1 = Ticket.load(imp["path"] / "seed-0" / "level-1")
    assert {n: tuple(m.shape) for n, m in level1.mask.items()} == {
        n: tuple(w.shape) for n, w in prunable(gfs_ticket.model()).items()}
    assert level1.mask.density < 1.0
    model = level1.model()
    assert all(bool((w[~level1.mask[n]] == 0).all()) for n, w in prunable(model).items())
    assert imp["metrics"]["dense_test_acc"] == gfs_ticket.metrics["test_acc"]  # level 0 is the GFS ticket
    snip = Ticket.load(pipe["snip"]["art"]["ticket"])
    assert snip.spec == gfs_ticket.spec and snip.mask.density == pytest.approx(0.5, abs=1e-3)


def test_one_shot_prune_and_finetune_of_a_gfs_ticket(pipe, tmp_path):
    src = pipe["gfs"]["art"]["ticket"]
    rep = api.run("finetune", input=src, out=tmp_path, train=TRAIN, prune={"selection": "layerwise", "rate": 0.5})
    ticket = Ticket.load(api.artifact(rep, "ticket"))
    assert ticket.spec == Ticket.load(src).spec and rep["metrics"]["density"] == pytest.approx(0.5, abs=2e-2)


@pytest.mark.skipif(importlib.util.find_spec("larq_compute_engine") is None, reason="LCE (edge extra) not installed")
def test_gfs_ticket_binarizes_and_converts_to_lce(pipe, tmp_path):
    binary = api.run("binarize", input=pipe["gfs"]["art"]["ticket"], out=tmp_path,
                     train={"iterations": 5, "batch_size": 64})
    lce = api.run("export_lce", input=api.artifact(binary, "binary_ticket"), out=tmp_path)
    assert lce["status"] == "passed" and lce["metrics"]["parity_agreement"] >= 0.99
    assert api.artifact(lce, "tflite").stat().st_size > 0 and lce["metrics"]["packed_fraction"] > 0


def test_without_controls_there_is_no_verdict_and_a_rerun_resumes(tmp_path):
    kw = {"out": tmp_path, "scope": SCOPE, **GFS, "keep": 0.25, "controls": {"controls": ["none"]}}
    rep = api.run("gfs", **kw)
    assert rep["metrics"]["winning"] is None and "no controls: no verdict" in rep["notes"][0]
    ticket = api.artifact(rep, "ticket")
    assert not list(ticket.glob("control-*.json"))
    stamp = (ticket / "ticket.json").stat().st_mtime_ns
    again = api.run("gfs", **kw)
    assert again["metrics"] == rep["metrics"] and (ticket / "ticket.json").stat().st_mtime_ns == stamp
    other = api.artifact(api.run("gfs", **{**kw, "out": tmp_path / "other"}), "ticket")
    for name in ("ticket.json", "init.safetensors", "final.safetensors"):  # same settings: the same bytes
        assert (other / name).read_bytes() == (ticket / name).read_bytes(), name


def test_settings_are_checked_and_the_command_has_help():
    with pytest.raises(UsageError, match="small_dense"):
        GfsHparams(layers=("1",))
    assert GfsHparams(layers=("1",), controls=VerdictSettings(controls=("l1", "random"))).layers == ("1",)
    with pytest.raises(UsageError, match="unknown control"):
        VerdictSettings(controls=("reinit",))
    res = CliRunner().invoke(app, ["find", "gfs", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "--select-batch-size" in res.stdout and "--finetune-epochs" in res.stdout


def test_units_it_cannot_gate_are_refused_before_any_training(tmp_path):
    with pytest.raises(UsageError, match="cannot gate the units of 'conv1' .*residual stream"):
        api.run("gfs", out=tmp_path, scope={"model": "resnet20", "dataset": "digits", "width": 0.25},
                layers=["conv1"], controls={"controls": ["l1"]})
    assert not list(tmp_path.rglob("seed-*"))


def test_a_shrunk_ticket_keeps_its_function_when_reloaded(pipe, digits):
    ticket = Ticket.load(pipe["gfs"]["art"]["ticket"])
    model = ticket.model()
    with torch.no_grad():
        top1 = model.eval()(digits.x_test).argmax(1)
    assert float((top1 == digits.y_test).float().mean()) == pytest.approx(pipe["gfs"]["metrics"]["test_acc"])
