import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "export"))
from ticket_factory import make_ticket  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory laid out as the finders write it: seed-0/level-{0,1,2} at 100%, 30%, 9% density.

    Built by hand (no training: parity and plumbing do not depend on accuracy; the suite stays fast)."""
    run = tmp_path_factory.mktemp("runs") / "lenet_300_100-digits" / "imp-test"
    for level, density in enumerate((1.0, 0.3, 0.09)):
        make_ticket(run / "seed-0" / f"level-{level}", density=density)
    return run


def test_export_onnx_then_bench_end_to_end(run_dir, tmp_path):
    res = runner.invoke(app, ["export", "onnx", str(run_dir), "--level", "2", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    m = rep["metrics"]
    assert m["parity_agreement"] == 1.0 and rep["details"]["sparse_initializers"] > 0
    assert m["file_bytes"] < 0.45 * m["file_bytes_dense_storage"]
    assert rep["inputs"][0]["path"].endswith("seed-0/level-2") and rep["scope"]["dataset"] == "digits"
    model = Path(rep["run_dir"]) / rep["artifacts"]["onnx"]
    res = runner.invoke(app, ["bench", str(model), "--iterations", "5", "--warmup", "1", "--json"])
    assert res.exit_code == 0, res.output
    bench = json.loads(res.stdout)
    assert bench["scope"]["dataset"] == "digits" and set(bench["details"]["latency"]) == {"1", "64"}
    assert bench["metrics"]["parity_agreement"] == 1.0 and bench["metrics"]["test_acc"] == m["test_acc"]
    assert set(bench["details"]["torch_latency"]) == {"1", "64"} and bench["metrics"]["speedup_vs_torch"] > 0
    res = runner.invoke(app, ["bench", str(model), "--iterations", "3", "--warmup", "1"])
    assert res.exit_code == 0 and "torch_latency_ms_p50" in res.stdout


def test_export_bad_inputs_exit_2_with_one_clear_message(run_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["export", "onnx", str(empty)], "holds no finished ticket"),
        (["export", "onnx", str(run_dir), "--level", "7"], "finished levels: 0, 1, 2"),
        (["export", "onnx", str(run_dir), "--opset", "3"], "opset must be in [13, 20], got 3"),
        (["export", "onnx", str(run_dir), "--sparse-storage", "zip"], "'zip' is not one of 'auto', 'dense', 'coo'"),
        (["export", "onnx", str(run_dir), "--provider", "rocm"], "'rocm' is not one of 'cpu', 'cuda', 'tensorrt'"),
        (["export", "tensorrt", str(run_dir)], "is a directory; this command takes an .onnx file"),
        (["export", "lce", str(run_dir / "seed-0" / "level-1")], "is a float (non-binarized) ticket"),
    ]
    for args, msg in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert msg in " ".join(res.output.replace("│", " ").split()), (args, res.output)
        assert "Traceback" not in res.output


def test_bench_bad_artifacts(run_dir, tmp_path):
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(b"not an onnx file")
    res = runner.invoke(app, ["bench", str(corrupt), "--dataset", "digits"])
    assert res.exit_code == 2 and "cannot load" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["bench", str(tmp_path / "missing.onnx")])
    assert res.exit_code == 2 and "does not exist" in res.output
    ok = json.loads(runner.invoke(app, ["export", "onnx", str(run_dir), "--out", str(tmp_path), "--json"]).stdout)
    model = Path(ok["run_dir"]) / ok["artifacts"]["onnx"]
    if "CUDAExecutionProvider" not in __import__("onnxruntime").get_available_providers():
        res = runner.invoke(app, ["bench", str(model), "--provider", "cuda"])
        assert res.exit_code == 2 and "CUDAExecutionProvider" in res.output
    res = runner.invoke(app, ["bench", str(model), "--dataset", "mnist5k", "--iterations", "2"])
    assert res.exit_code == 2 and "takes inputs of shape (1, 8, 8)" in res.output


def test_bench_of_an_engine_without_tensorrt_exits_2(tmp_path):
    from export.trt_engine import tensorrt_available as available

    if available()[0]:
        pytest.skip("TensorRT and a CUDA GPU are present")
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"\0" * 64)
    res = runner.invoke(app, ["bench", str(plan), "--dataset", "digits"])
    assert res.exit_code == 2 and "cannot benchmark model.plan here" in res.output
