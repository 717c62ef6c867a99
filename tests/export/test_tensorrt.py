import os
import shlex
import stat

import onnx
import pytest
from ticket_factory import make_ticket

from compress.errors import BackendUnavailableError
from export import tensorrt as trt_export
from export.errors import ExportError
from pipelines.tensorrt_export import export_tensorrt

TRT_OK, TRT_REASON = trt_export.available()


def test_trtexec_command_line():
    profile = trt_export.shapes((1, 28, 28), None)
    cmd = trt_export.trtexec_command("model.onnx", "model.plan", "force", fp16=True, int8=True, profile=profile,
                                     calib_cache="model.calib")
    assert cmd[:4] == ["trtexec", "--onnx=model.onnx", "--saveEngine=model.plan", "--sparsity=enable"]
    assert "--fp16" in cmd and "--int8" in cmd and "--calib=model.calib" in cmd
    assert "--minShapes=input:1x1x28x28" in cmd and "--optShapes=input:64x1x28x28" in cmd
    assert "--maxShapes=input:256x1x28x28" in cmd and "--verbose" in cmd
    static = trt_export.trtexec_command("m.onnx", "m.plan", "disable", profile=trt_export.shapes((1, 8, 8), 32))
    assert "--sparsity=disable" in static and not any("Shapes" in c for c in static) and "--fp16" not in static


def test_build_script_is_executable_and_holds_the_command(tmp_path):
    cmd = trt_export.trtexec_command("model.onnx", "model.plan", "enable")
    path = trt_export.write_build_script(tmp_path, cmd)
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash") and shlex.join(cmd) in text and "tee build.log" in text
    assert os.stat(path).st_mode & stat.S_IXUSR


def test_sparse_layers_are_read_from_the_build_log():
    log = ["[TRT] some other line", "(Sparsity) Layers eligible for sparse math: /0/Conv, /3/Gemm, /5/Gemm",
           "(Sparsity) TRT inference plan picked sparse implementation for layers: /3/Gemm"]
    assert trt_export.sparse_layers_from_log(log) == {"eligible": ["/0/Conv", "/3/Gemm", "/5/Gemm"],
                                                      "sparse": ["/3/Gemm"]}
    assert trt_export.sparse_layers_from_log("nothing here") == {"eligible": [], "sparse": []}


@pytest.mark.skipif(TRT_OK, reason="TensorRT and a CUDA GPU are present: the 'unavailable' path cannot be checked")
def test_without_tensorrt_everything_up_to_the_gpu_is_written(tmp_path):
    tdir = make_ticket(tmp_path / "t", width=0.32, pattern="2:4")  # hidden sizes 96 and 32: all groupable by 4
    with pytest.raises(BackendUnavailableError, match="TensorRT cannot build engines here"):
        export_tensorrt(tdir, tmp_path / "trt", sparsity="force")
    out = tmp_path / "trt"
    assert (out / "build_engine.sh").is_file() and (out / "model.onnx").is_file() and (out / "tensorrt.json").is_file()
    model = onnx.load(str(out / "model.onnx"))
    assert len(model.graph.sparse_initializer) == 0  # TensorRT gets dense storage with constant Gemm weights
    assert [n.op_type for n in model.graph.node if n.op_type in ("Gemm", "MatMul")] == ["Gemm"] * 3


def test_force_with_non_2of4_layers_lists_them(tmp_path):
    tdir = make_ticket(tmp_path / "t", density=0.3)  # random 30% mask: no layer is 2:4
    with pytest.raises(ExportError, match=r"3 layer\(s\) are not: /1/Gemm \(1\.weight\).*--allow-dense-fallback"):
        export_tensorrt(tdir, tmp_path / "trt", sparsity="force")
    assert not (tmp_path / "trt" / "build_engine.sh").exists()


@pytest.mark.skipif(not TRT_OK, reason=f"needs TensorRT and a CUDA GPU: {TRT_REASON}")
def test_engine_build_parity_and_sparse_layers_on_gpu(tmp_path):
    tdir = make_ticket(tmp_path / "t", width=0.32, pattern="2:4")
    report = export_tensorrt(tdir, tmp_path / "trt", sparsity="force")
    assert report["built"] and set(report["engines"]) == {"sparse", "dense"}
    for e in report["engines"].values():
        assert e["parity_vs_ort"]["passed"]
