"""The stages over the finetune, ONNX and TensorRT APIs, chained on a tiny pipeline."""

import pytest
import torch

from compress.sparsity import nm
from compress.ticket import Ticket
from pipelines.runner import Pipeline
from tests.pipelines.pipeline_specs import TRAIN, tiny

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    raw = tiny(
        {"kind": "finetune", "train": dict(TRAIN), "gate": {"max_acc_drop": 0.5, "min_agreement": 0.3}},
        {"kind": "finetune", "name": "nm", "prune": {"selection": "2:4", "nm_policy": "dense"},
         "train": dict(TRAIN), "gate": {"max_density": 0.6}},
        {"kind": "export_onnx", "gate": {"min_parity": 1.0}},
        {"kind": "bench", "name": "bench_onnx", "artifact": "onnx", "iterations": 10, "warmup": 2,
         "gate": {"min_parity": 1.0, "max_latency_ratio": 50}},
        {"kind": "export_tensorrt", "name": "tensorrt", "gate": {"min_parity": 0.99}},
    )
    out = tmp_path_factory.mktemp("runs")
    pipe = Pipeline(raw, "stages")
    return pipe.root(out), pipe.run(out)


def _stage(rep, name):
    return next(s for s in rep["stages"] if s["name"] == name)


def test_chain_passes_and_gpu_stage_is_skipped_with_reason(report):
    _, rep = report
    assert rep["status"] == "passed"
    assert [s["status"] for s in rep["stages"]] == ["passed"] * 7 + ["skipped"]
    assert "tensorrt" in _stage(rep, "tensorrt")["reason"] or "CUDA" in _stage(rep, "tensorrt")["reason"]


def test_finetune_keeps_the_mask_and_nm_is_2_of_4(report):
    root, rep = report
    imp, ft, nm_stage = _stage(rep, "imp"), _stage(rep, "finetune"), _stage(rep, "nm")
    src, tuned = Ticket.load(root / imp["artifacts"]["ticket"]), Ticket.load(root / ft["artifacts"]["ticket"])
    assert ft["metrics"]["density"] == imp["metrics"]["density"]
    assert all(torch.equal(src.mask[k], tuned.mask[k]) for k in src.mask)
    assert not torch.equal(src.final["1.weight"], tuned.final["1.weight"])  # it did train
    t24 = Ticket.load(root / nm_stage["artifacts"]["ticket"])
    checked = [nm.check(t24.final[k], 2, 4, k) for k in t24.mask]
    assert any(c.groupable for c in checked)
    assert all(c.compliant for c in checked if c.groupable)
    assert t24.mask.is_subset_of(tuned.mask)


def test_onnx_export_and_benchmark_against_the_baseline(report):
    root, rep = report
    ex, bench = _stage(rep, "export_onnx"), _stage(rep, "bench_onnx")
    onnx = root / ex["artifacts"]["onnx"]
    assert onnx.is_file() and ex["metrics"]["file_bytes"] == onnx.stat().st_size
    assert ex["metrics"]["parity_agreement"] == 1.0 and bench["metrics"]["parity_agreement"] == 1.0
    assert bench["metrics"]["test_acc"] == pytest.approx(_stage(rep, "nm")["metrics"]["test_acc"], abs=1e-9)
    m = bench["metrics"]
    assert m["latency_ratio"] == pytest.approx(m["latency_ms_p50"] / m["baseline_latency_ms_p50"])
    assert (root / bench["dir"] / "baseline" / "model.onnx").is_file()  # the dense model, exported the same way
    # Each stage writes only into its own folder: nothing of the bench lands beside the exported model.
    assert sorted(p.name for p in onnx.parent.iterdir()) == ["model.onnx", "result.json", "stage.json"]
    assert bench["details"]["latency"]["1"]["iters"] == 10 and bench["details"]["threads"] == 1
