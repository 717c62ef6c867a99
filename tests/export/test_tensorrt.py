import json
import os
import shlex
import stat
import subprocess
from pathlib import Path

import jsonschema
import numpy as np
import onnx
import pytest
from ticket_factory import make_ticket, mask_2of4
from typer.testing import CliRunner

from compress import data as datasets
from compress.errors import BackendUnavailableError
from export import trt_layers
from export.errors import ArtifactError
from export.onnx import export_onnx
from export.ort_session import run, session
from export.tensorrt import _notes, prepare
from export.trt_engine import profile_shapes, tensorrt_available, trtexec_command, write_build_script
from pipelines import report
from pipelines.cli import app
from pipelines.runner import Pipeline

DATA = Path(__file__).parent / "data"
TRT_OK, TRT_REASON = tensorrt_available()
needs_no_gpu = pytest.mark.skipif(TRT_OK, reason="TensorRT and a CUDA GPU are present: the 'unavailable' path "
                                                 "cannot be checked here")


def test_inspector_parser_on_a_recorded_tensorrt_report():
    # A real engine's layer report (NVIDIA/TensorRT#4020, ResNet-18 built with --sparsity=force), trimmed.
    rows = trt_layers.parse((DATA / "trt_layers_resnet18_int8_sparsity_force.json").read_text())
    assert len(rows) == 5
    reformat, conv0, conv4, fc, reshape = rows
    assert reformat["type"] == "Reformat" and reformat["tactic"] is None and not reformat["sparse_kernel"]
    assert conv0["onnx_layers"] == ["resnetv15_stage3_conv0_fwd", "resnetv15_stage3_batchnorm0_fwd",
                                    "resnetv15_stage3_relu0_fwd"]
    # 2:4 weights (HasSparseWeights=1) but TensorRT kept dense tactics for conv0 and the FC layer.
    assert conv0["sparse_weights"] and not conv0["sparse_kernel"]
    assert fc["sparse_weights"] and not fc["sparse_kernel"] and fc["onnx_layers"] == ["resnetv15_dense0_fwd"]
    assert conv4["sparse_weights"] and conv4["sparse_kernel"] and "avdt_sparse" in conv4["tactic"]
    assert reshape["name"] == "reshape_after_resnetv15_dense0_fwd" and reshape["sparse_weights"] is None
    s = trt_layers.summary(rows)
    assert s["detailed"] and s["layers"] == 5
    assert s["sparse"] == ["resnetv15_stage3_conv4_fwd + resnetv15_stage3_batchnorm4_fwd"]
    assert s["sparse_onnx_layers"] == ["resnetv15_stage3_conv4_fwd", "resnetv15_stage3_batchnorm4_fwd"]
    assert s["eligible"] == [conv0["name"], conv4["name"], fc["name"]]


def test_names_only_report_says_it_has_no_tactics():
    rows = trt_layers.parse(json.loads((DATA / "trt_layers_resnet18_names_only.json").read_text()))
    s = trt_layers.summary(rows)
    assert s == {"layers": 6, "detailed": False, "eligible": [], "sparse": [], "sparse_onnx_layers": []}
    assert rows[1]["name"] == ("resnetv15_conv0_fwd + resnetv15_batchnorm0_fwd + resnetv15_relu0_fwd + "
                               "resnetv15_pool0_fwd")


def test_parser_refuses_what_is_not_an_inspector_report():
    with pytest.raises(ArtifactError, match="not JSON"):
        trt_layers.parse("[TRT] Layers eligible for sparse math: /1/Gemm")
    with pytest.raises(ArtifactError, match="no 'Layers' list"):
        trt_layers.parse({"Bindings": ["input"]})
    assert trt_layers.onnx_layers("[ONNX Layer: /1/Gemm]\x1e[ONNX Layer: /2/Relu]") == ["/1/Gemm", "/2/Relu"]
    assert trt_layers.onnx_layers("") == [] and not trt_layers.is_sparse_tactic(None)


def test_trtexec_lines_and_build_script(tmp_path):
    profile = profile_shapes((1, 8, 8), None, 64, 256)
    assert profile == {"min": (1, 1, 8, 8), "opt": (64, 1, 8, 8), "max": (256, 1, 8, 8)}
    assert profile_shapes((1, 8, 8), 32, 64, 256) == {}
    sparse = trtexec_command("model.onnx", "model.plan", True, True, profile, "input", "layers.json")
    assert sparse == ["trtexec", "--onnx=model.onnx", "--saveEngine=model.plan", "--sparsity=enable", "--fp16",
                      "--minShapes=input:1x1x8x8", "--optShapes=input:64x1x8x8", "--maxShapes=input:256x1x8x8",
                      "--profilingVerbosity=detailed", "--exportLayerInfo=layers.json"]
    dense = trtexec_command("model.onnx", "model.dense.plan", False, False, {}, "x", "layers.dense.json")
    assert "--sparsity=disable" in dense and "--fp16" not in dense and not any("Shapes" in c for c in dense)
    path = write_build_script(tmp_path, [sparse, dense])
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash") and shlex.join(sparse) in text and shlex.join(dense) in text
    assert "force" not in text and os.stat(path).st_mode & stat.S_IXUSR
    subprocess.run(["bash", "-n", str(path)], check=True)  # the script parses


def test_sparse_initializers_are_densified_at_the_onnx_level(tmp_path):
    onnx_path = export_onnx(make_ticket(tmp_path / "t", density=0.1), tmp_path / "onnx")["artifact"]
    assert len(onnx.load(str(onnx_path)).graph.sparse_initializer) == 3  # auto storage: sparse is smaller here
    prep = prepare(onnx_path, tmp_path / "trt")
    dense = onnx.load(str(prep["path"]))
    assert prep["densified"] == 3 and len(dense.graph.sparse_initializer) == 0
    assert [n.op_type for n in dense.graph.node if n.op_type in ("Gemm", "MatMul")] == ["Gemm"] * 3
    consts = {i.name for i in dense.graph.initializer}
    assert all(n.input[1] in consts for n in dense.graph.node if n.op_type == "Gemm")  # constant weights
    x = datasets.get("digits").split("test")[0].numpy()
    assert np.array_equal(run(session(onnx_path), x), run(session(prep["path"]), x))
    assert prep["input_name"] == "input" and prep["input_shape"] == (1, 8, 8) and prep["static_batch"] is None
    assert prep["density"] == pytest.approx(0.1, abs=0.02) and prep["qdq_nodes"] == 0
    rows = prep["nm_report"]  # a random 10% mask is not 2:4: every layer is listed with its reason
    assert len(rows) == 3 and not any(r["compliant"] for r in rows)
    assert "groups of 4 hold more than 2 non-zeros" in rows[0]["reason"]  # 64 inputs: groupable, not 2:4
    assert [r["reason"] for r in rows[1:]] == [f"{c} input channels is not a multiple of 4" for c in (75, 25)]
    notes = _notes(prep, rows)
    assert "densified 3 sparse initializer(s)" in notes[0] and "3 of 3 conv/FC layers are not 2:4" in notes[1]


def test_refuses_a_file_that_is_not_onnx(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(ArtifactError, match="is not an ONNX model"):
        prepare(bad, tmp_path / "trt")


@needs_no_gpu
def test_command_on_an_nm_ticket_writes_everything_up_to_the_gpu_and_exits_2(tmp_path):
    runner = CliRunner()
    ticket = make_ticket(tmp_path / "t", width=0.32, pattern="nm")  # hidden 96 and 32: every layer groupable by 4
    res = runner.invoke(app, ["export", "onnx", str(ticket), "--out", str(tmp_path / "runs"), "--quiet"])
    assert res.exit_code == 0, res.output
    onnx_path = next((tmp_path / "runs").glob("export_onnx-*/model.onnx"))
    res = runner.invoke(app, ["export", "tensorrt", str(onnx_path), "--quiet"])
    assert res.exit_code == 2 and "TensorRT cannot build engines here" in res.output, res.output
    stage = next(onnx_path.parent.glob("export_tensorrt-*"))
    rep = json.loads((stage / "report.json").read_text())
    jsonschema.validate(rep, report.schema())
    assert rep["status"] == "skipped" and rep["method"] == "export_tensorrt" and "TensorRT" in rep["reason"]
    assert rep["inputs"][0]["kind"] == "onnx" and rep["scope"]["dataset"] == "digits"  # from export_onnx's record
    m = rep["metrics"]
    assert m["nm_layers"] == m["nm_compliant_layers"] == 3 and m["nm_compliant_fraction"] == 1.0
    assert m["density"] == 0.5 and all(r["compliant"] and r["groups"] > 0 for r in rep["details"]["nm_report"])
    assert (stage / "model.onnx").is_file() and (stage / "build_engine.sh").is_file()
    assert set(rep["artifacts"]) == {"trt_onnx", "build_script"}
    assert "--sparsity=enable" in rep["details"]["trtexec"][0] and "--sparsity=disable" in rep["details"]["trtexec"][1]
    assert not (stage / "result.json").exists()  # not done: a run on a GPU machine does the rest


def test_bad_inputs_exit_2_with_one_clear_message(tmp_path):
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(b"not an onnx model")
    cases = [([str(tmp_path)], "is a directory; this command takes an .onnx file"),
             ([str(corrupt), "--batch-size", "64", "--max-batch", "8"], "max_batch (8) must be >= batch_size (64)"),
             ([str(corrupt), "--sparsity", "force"], "is not one of 'enable'"),
             ([str(corrupt)], "model.onnx is not an ONNX model")]
    for args, msg in cases:
        res = CliRunner().invoke(app, ["export", "tensorrt", *args, "--quiet"])
        assert res.exit_code == 2 and msg in " ".join(res.output.split()), (args, res.output)
        assert "Traceback" not in res.output


@needs_no_gpu
def test_pipeline_stage_takes_the_onnx_of_export_onnx_and_is_skipped_with_the_reason(tmp_path):
    ticket = make_ticket(tmp_path / "t", width=0.32, pattern="2:4")
    spec = {"pipeline": {"name": "trt", "dataset": "digits", "width": 0.32},
            "stages": [{"kind": "export_onnx", "input": str(ticket)}, {"kind": "export_tensorrt", "fp16": False}]}
    rep = Pipeline(spec).run(tmp_path / "runs")
    jsonschema.validate(rep, report.schema())
    onnx_stage, trt_stage = rep["stages"]
    assert onnx_stage["status"] == "passed" and trt_stage["status"] == "skipped"
    assert "TensorRT cannot build engines here" in trt_stage["reason"]
    assert trt_stage["inputs"][0]["path"].endswith("model.onnx") and trt_stage["metrics"]["nm_compliant_layers"] == 3
    assert "--fp16" not in trt_stage["details"]["trtexec"][0]


@pytest.mark.skipif(not TRT_OK, reason=f"needs TensorRT and a CUDA GPU: {TRT_REASON}")
def test_engine_build_parity_and_sparse_layers_on_gpu(tmp_path):
    import torch
    from torch import nn

    from compress.sparsity import nm
    from export.onnx_graph import to_onnx

    # A 3x3 conv with 256 input and output channels: where NVIDIA reports sparse kernels beat dense ones (#3849).
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 256, 3, padding=1), nn.ReLU(), nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(256 * 64, 10)).eval()
    with torch.no_grad():
        model[2].weight.mul_(mask_2of4(model[2].weight, gen).float())
    assert nm.check(model[2].weight, 2, 4).compliant
    graph = to_onnx(model, (1, 8, 8))
    onnx_path = tmp_path / "model.onnx"
    onnx.save(graph, str(onnx_path))
    conv = next(n.name for n in graph.graph.node if n.op_type == "Conv" and n.input[1] == "2.weight")
    spec = {"pipeline": {"name": "gpu", "dataset": "digits"},
            "stages": [{"kind": "export_tensorrt", "input": str(onnx_path), "iters": 20, "warmup": 5}]}
    rep = Pipeline(spec, single=True).run(tmp_path / "runs")
    m, d = rep["metrics"], rep["details"]
    assert rep["status"] == "passed" and m["parity_agreement"] >= 0.99
    assert m["sparse_layers"] >= 1 and conv in d["sparse_onnx_layers"], d["engines"]["sparse"]["layers"]
    assert d["engines"]["dense"]["sparsity"]["sparse"] == []  # SPARSE_WEIGHTS off: no sparse kernel anywhere
    assert m["latency_ratio"] > 0 and Path(rep["run_dir"], rep["artifacts"]["plan"]).is_file()


@needs_no_gpu
def test_plan_target_without_tensorrt_fails_with_the_reason():
    from deploy_targets.tensorrt import TensorRTTarget

    assert any(w in TRT_REASON for w in ("not installed", "only type stubs", "no CUDA GPU"))
    with pytest.raises(BackendUnavailableError, match="cannot run model.plan"):
        TensorRTTarget().evaluate(Path("model.plan"), np.zeros((1, 1, 8, 8)), np.zeros(1))
