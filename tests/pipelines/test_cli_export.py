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
    assert rep["verification"]["agreement"] == 1.0 and rep["sparse_initializers"] > 0
    assert rep["size_bytes"] < 0.45 * rep["size_bytes_dense_storage"]
    assert rep["ticket_dir"].endswith("seed-0/level-2")
    res = runner.invoke(app, ["bench", str(tmp_path / "model.onnx"), "--iters", "5", "--warmup", "1", "--json"])
    assert res.exit_code == 0, res.output
    bench = json.loads(res.stdout)
    assert bench["dataset"] == "digits" and set(bench["latency"]["batch"]) == {"1", "64"}
    assert bench["agreement_vs_torch"] == 1.0 and bench["test_acc"] == pytest.approx(bench["torch"]["test_acc"])
    assert set(bench["speedup_p50_vs_torch"]) == {"1", "64"}
    assert (tmp_path / "bench-model.onnx.json").is_file()
    res = runner.invoke(app, ["bench", str(tmp_path / "model.onnx"), "--iters", "3", "--warmup", "1"])
    assert res.exit_code == 0 and "torch eager" in res.stdout


def test_export_bad_inputs_exit_2_with_one_clear_message(run_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["export", "onnx", str(empty)], "holds no finished ticket"),
        (["export", "onnx", str(run_dir), "--level", "7"], "finished levels: 0, 1, 2"),
        (["export", "onnx", str(run_dir), "--opset", "3"], "opset 3 is outside"),
        (["export", "onnx", str(run_dir), "--sparse-storage", "zip"], "auto, dense, coo"),
        (["export", "onnx", str(run_dir), "--provider", "rocm"], "valid: cpu, cuda, tensorrt"),
        (["export", "tensorrt", str(run_dir), "--sparsity", "force", "--out", str(tmp_path / "f")],
         "--sparsity force needs every conv/FC weight 2:4"),
    ]
    for args, msg in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert msg in res.output, (args, res.output)
        assert "Traceback" not in res.output


def test_export_tensorrt_without_gpu_exits_2_after_writing_the_script(run_dir, tmp_path):
    from export.tensorrt import available

    if available()[0]:
        pytest.skip("TensorRT and a CUDA GPU are present")
    res = runner.invoke(app, ["export", "tensorrt", str(run_dir), "--level", "1", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "TensorRT cannot build engines here" in res.output
    assert (tmp_path / "build_engine.sh").is_file()
    assert json.loads((tmp_path / "tensorrt.json").read_text())["built"] is False


def test_bench_bad_artifacts(run_dir, tmp_path):
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(b"not an onnx file")
    res = runner.invoke(app, ["bench", str(corrupt), "--dataset", "digits"])
    assert res.exit_code == 2 and "cannot load" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["bench", str(tmp_path / "missing.onnx")])
    assert res.exit_code == 2 and "does not exist" in res.output
    out = tmp_path / "ok"
    assert runner.invoke(app, ["export", "onnx", str(run_dir), "--out", str(out)]).exit_code == 0
    res = runner.invoke(app, ["bench", str(out / "model.onnx"), "--provider", "cuda"])
    if "CUDAExecutionProvider" not in __import__("onnxruntime").get_available_providers():
        assert res.exit_code == 2 and "CUDAExecutionProvider" in res.output
    res = runner.invoke(app, ["bench", str(out / "model.onnx"), "--dataset", "mnist5k", "--iters", "2"])
    assert res.exit_code == 2 and "takes inputs of shape (1, 8, 8)" in res.output


def test_bench_of_an_engine_without_tensorrt_exits_2(tmp_path):
    from export.tensorrt import available

    if available()[0]:
        pytest.skip("TensorRT and a CUDA GPU are present")
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"\0" * 64)
    res = runner.invoke(app, ["bench", str(plan), "--dataset", "digits"])
    assert res.exit_code == 2 and "cannot benchmark model.plan here" in res.output and "tensorrt" in res.output
