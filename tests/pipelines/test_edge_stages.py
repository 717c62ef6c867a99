"""The binary stages (MPT, binarize) and the LCE export + edge benchmark, chained on a tiny pipeline."""

import importlib.util

import pytest

from compress.ticket import Ticket
from pipelines.runner import Pipeline
from tests.pipelines.pipeline_specs import TRAIN

# find_spec, not importorskip: importing TensorFlow into this torch process is what the design forbids.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("larq_compute_engine") is None,
                                reason="the edge extra (TensorFlow, larq, LCE) is not installed")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    raw = {"pipeline": {"name": "edge", "width": 0.25, "dataset": "digits", "threads": 1},
           "stages": [
               {"kind": "dense", "train": dict(TRAIN)},
               {"kind": "mpt", "keep": 0.5, "scores": {"epochs": 1, "batch_size": 64, "eval_every": 5},
                "gate": {"max_density": 0.55}},
               {"kind": "imp", "rounds": 1, "train": dict(TRAIN), "controls": {"controls": []}},
               {"kind": "binarize", "train": dict(TRAIN), "gate": {"min_storage_ratio": 1.2}},
               {"kind": "export_lce", "gate": {"min_parity": 0.9}},
               {"kind": "bench", "name": "bench_edge", "artifact": "tflite", "iterations": 5, "warmup": 1,
                "gate": {"max_latency_ms": 1000.0}},
           ]}
    out = tmp_path_factory.mktemp("runs")
    pipe = Pipeline(raw, "edge")
    return pipe.root(out), pipe.run(out)


def _stage(rep, name):
    return next(s for s in rep["stages"] if s["name"] == name)


def test_binary_chain_passes(report):
    _, rep = report
    assert rep["status"] == "passed", [(s["name"], s["status"], s["reason"]) for s in rep["stages"]]


def test_mpt_and_binarize_tickets_are_one_bit_where_binarized(report):
    root, rep = report
    mpt = Ticket.load(root / _stage(rep, "mpt")["artifacts"]["binary_ticket"])
    assert 1 in mpt.precision.values() and mpt.density == pytest.approx(0.5, abs=0.01)
    b = _stage(rep, "binarize")
    ticket = Ticket.load(root / b["artifacts"]["binary_ticket"])
    imp = Ticket.load(root / _stage(rep, "imp")["artifacts"]["ticket"])
    assert sorted(ticket.precision.values()) == [1, 32, 32]  # inner layer binary, first and last float
    assert ticket.density == imp.density  # the ticket's pruned weights stay pruned (ternary)
    assert b["metrics"]["storage_bytes"] < _stage(rep, "imp")["metrics"]["storage_bytes"]


def test_lce_export_feeds_the_edge_benchmark(report):
    root, rep = report
    lce, edge = _stage(rep, "export_lce"), _stage(rep, "bench_edge")
    tflite = root / lce["artifacts"]["tflite"]
    assert tflite.suffix == ".tflite" and lce["metrics"]["file_bytes"] == tflite.stat().st_size
    assert edge["metrics"]["file_bytes"] == tflite.stat().st_size
    assert edge["metrics"]["test_acc"] == lce["metrics"]["test_acc"]  # measured once by the export, reused
    assert edge["metrics"]["latency_ms_p50"] > 0 and any("reference kernels" in n for n in edge["notes"])
    assert lce["metrics"]["packed_fraction"] == 1.0  # binarize defaults to binary activations: bit-packed
