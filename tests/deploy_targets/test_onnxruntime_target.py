import numpy as np
import onnxruntime as ort
import pytest
from ticket_factory import make_ticket

import deploy_targets
from compress.errors import UsageError
from compress.ticket import Ticket
from compress.train import evaluate
from deploy_targets.latency import measure, sweep
from deploy_targets.onnxruntime import OnnxRuntimeTarget
from export.errors import ArtifactError, ProviderError
from export.onnx import export_onnx


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("ort")
    tdir = make_ticket(d / "ticket", "conv2", 0.125, density=0.2)
    return export_onnx(tdir, d / "onnx", batch=None), tdir


def test_latency_harness_counts_and_orders():
    calls = []
    r = measure(lambda: calls.append(1), warmup=3, iters=20)
    assert len(calls) == 23 and r["iters"] == 20 and r["latency_ms_p50"] <= r["latency_ms_p90"]
    s = sweep(lambda b: (lambda: sum(range(b))), (1, 64), warmup=1, iters=5)
    assert set(s) == {"1", "64"} and all(v["throughput_sps"] > 0 for v in s.values())


def test_onnx_target_by_suffix_evaluates_like_pytorch(exported, digits):
    rep, tdir = exported
    target = deploy_targets.for_artifact(rep["artifact"], threads=1, iters=5, warmup=1)
    assert isinstance(target, OnnxRuntimeTarget) and target.available()[0]
    x, y = digits.split("test")
    ev = target.evaluate(rep["artifact"], x.numpy(), y.numpy())
    assert ev["test_acc"] == pytest.approx(evaluate(Ticket.load(tdir).model(), x, y)[1])
    bm = target.benchmark(rep["artifact"], (1, 8, 8), (1, 64))
    assert set(bm["batch"]) == {"1", "64"} and bm["providers"] == ["CPUExecutionProvider"]
    from export.onnx import ticket_sha256

    assert target.metadata(rep["artifact"])["ticket_sha256"] == ticket_sha256(tdir.resolve())


def test_ticket_directories_run_on_the_torch_target_with_the_same_harness(exported, digits):
    from deploy_targets.torch_eager import TorchTarget

    _, tdir = exported
    target = deploy_targets.for_artifact(tdir, threads=1, iters=5, warmup=1)
    assert isinstance(target, TorchTarget)
    x, y = digits.split("test")
    assert target.evaluate(tdir, x.numpy(), y.numpy())["test_acc"] == pytest.approx(
        evaluate(Ticket.load(tdir).model(), x, y)[1])
    bm = target.benchmark(tdir, (1, 8, 8), (1, 4))
    assert set(bm["batch"]) == {"1", "4"} and bm["batch"]["4"]["iters"] == 5 and bm["threads"] == 1


def test_unknown_suffix_lists_supported(tmp_path):
    with pytest.raises(UsageError, match=r"\.onnx.*\.plan"):
        deploy_targets.for_artifact(tmp_path / "model.pt")


def test_corrupt_onnx_is_an_artifact_error(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ArtifactError, match="cannot load"):
        OnnxRuntimeTarget().evaluate(bad, np.zeros((1, 1, 8, 8), np.float32), np.zeros(1))


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA EP present here")
def test_missing_provider_is_an_error_not_a_silent_cpu_fallback(exported):
    target = OnnxRuntimeTarget(provider="cuda")
    assert not target.available()[0]
    with pytest.raises(ProviderError, match="not available.*No silent fallback"):
        target.evaluate(exported[0]["artifact"], np.zeros((1, 1, 8, 8), np.float32), np.zeros(1))
