"""TensorRT 10 engines from a dense-storage ONNX file, and the equivalent `trtexec` line for building by hand.

`build_engine` needs `tensorrt` and a CUDA GPU (imported lazily; `tensorrt_available()` says why not). It builds
with `ProfilingVerbosity.DETAILED` so that the engine inspector reports every layer's tactic, and returns that
report: which layers ran sparse kernels is read from it (export.trt_layers), never from the build log.
`trtexec --sparsity=force` is never written: it prunes the weights to 2:4 behind the user's back.
Precision uses TensorRT 10's builder flag (FP16, weak typing, deprecated since 10.12): TensorRT 11 builds
strongly typed networks only, where an fp16 engine comes from an fp16 ONNX (`lottery export onnx --fp16`).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from compress.io import atomic_write_bytes

Profile = dict[str, tuple[int, ...]]


def tensorrt_available() -> tuple[bool, str]:
    """Can TensorRT engines be built and run here? (False, reason) on CPU-only machines."""
    try:
        import tensorrt as trt
    except (ImportError, OSError) as e:
        return False, (f"the tensorrt package is not installed ({e}); it needs a machine with a CUDA GPU "
                       "(lottery's 'tensorrt' extra, wheels from NVIDIA's index)")
    if not hasattr(trt, "Builder"):  # tensorrt-stubs leaves a bare `tensorrt` namespace package behind
        return False, ("the importable 'tensorrt' is only type stubs (tensorrt-stubs), not TensorRT, which needs a "
                       "machine with a CUDA GPU")
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA GPU is visible to torch (TensorRT engines need one)"
    return True, f"TensorRT {trt.__version__} on {torch.cuda.get_device_name(0)}"


def profile_shapes(input_shape: tuple[int, ...], static_batch: int | None, opt: int, largest: int) -> Profile:
    """min/opt/max input shapes of the optimization profile ({} for a static-batch ONNX)."""
    if static_batch:
        return {}
    return {"min": (1, *input_shape), "opt": (opt, *input_shape), "max": (max(opt, largest), *input_shape)}


def trtexec_command(onnx: str | Path, engine: str | Path, sparse: bool, fp16: bool, profile: Profile,
                    input_name: str, layer_info: str | Path) -> list[str]:
    """The trtexec (TensorRT 10) invocation equivalent to `build_engine`; it also writes the layer report."""
    cmd = ["trtexec", f"--onnx={onnx}", f"--saveEngine={engine}", f"--sparsity={'enable' if sparse else 'disable'}"]
    if fp16:
        cmd.append("--fp16")
    for key in ("min", "opt", "max"):
        if key in profile:
            cmd.append(f"--{key}Shapes={input_name}:{'x'.join(str(d) for d in profile[key])}")
    return cmd + ["--profilingVerbosity=detailed", f"--exportLayerInfo={layer_info}"]


def write_build_script(directory: str | Path, commands: list[list[str]]) -> Path:
    """`build_engine.sh` beside the ONNX: the same engines built by hand on a GPU machine with trtexec."""
    text = ("#!/usr/bin/env bash\n"
            "# Build the TensorRT engines on a machine with a CUDA GPU and TensorRT 10 (trtexec).\n"
            "# The layers*.json files are TensorRT's per-layer report: a tactic named '*sparse*' is a 2:4 sparse\n"
            "# kernel; HasSparseWeights=1 only says the weights qualified.\n"
            "set -euo pipefail\ncd \"$(dirname \"$0\")\"\n" + "".join(shlex.join(c) + "\n" for c in commands))
    path = atomic_write_bytes(Path(directory) / "build_engine.sh", text.encode())
    path.chmod(0o755)
    return path


def build_engine(onnx_path: str | Path, engine_path: str | Path, sparse: bool, fp16: bool, profile: Profile,
                 input_name: str, workspace_bytes: int = 1 << 30) -> dict[str, Any]:
    """Build, save and inspect one engine with the TensorRT 10 Python API (needs a CUDA GPU).

    Returns the engine path and size, the TensorRT version and the engine inspector's JSON (a str)."""
    import tensorrt as trt

    from export.errors import ExportError

    class _Log(trt.ILogger):  # keeps warnings and errors, for a build failure's message
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.lines: list[str] = []

        def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
            if severity <= trt.ILogger.Severity.WARNING:
                self.lines.append(msg)

    logger = _Log()
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT's ONNX parser rejected {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # the inspector then reports tactics
    if sparse:
        config.set_flag(trt.BuilderFlag.SPARSE_WEIGHTS)
    if fp16:
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise ExportError(f"TensorRT {trt.__version__} builds strongly typed networks only (no FP16 builder "
                              "flag): export the ONNX with `lottery export onnx --fp16` and build it with --no-fp16.")
        config.set_flag(trt.BuilderFlag.FP16)
    if profile:
        prof = builder.create_optimization_profile()
        prof.set_shape(input_name, *(trt.Dims(list(profile[k])) for k in ("min", "opt", "max")))
        config.add_optimization_profile(prof)
    plan = builder.build_serialized_network(network, config)
    if plan is None:  # the stubs say IHostMemory, but the binding returns None when the build fails
        raise ExportError(f"TensorRT could not build an engine from {onnx_path}: {' | '.join(logger.lines[-5:])}")
    data = bytes(memoryview(plan))
    atomic_write_bytes(engine_path, data)
    runtime = trt.Runtime(logger)  # a name keeps it alive as long as the engine is inspected
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise ExportError(f"TensorRT built {engine_path} but cannot load it back: {' | '.join(logger.lines[-5:])}")
    info = engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)
    return {"engine": Path(engine_path), "file_bytes": len(data), "trt_version": trt.__version__,
            "layer_info": info}
