"""TensorRT 10 engines from the exported ONNX, with 2:4 structured sparsity (`BuilderFlag.SPARSE_WEIGHTS`).

Everything up to the GPU is plain Python and tested on the CPU: the trtexec command line, the
`build_engine.sh` written beside the ONNX, and parsing TensorRT's build log for the layers it ran with
sparse kernels. `build_engine` needs `tensorrt` and a CUDA GPU (imported lazily; see `available()`).
Our `--sparsity force` means "every eligible layer must already be 2:4" (checked before building);
trtexec's own `--sparsity=force` prunes weights to 2:4 behind the user's back, so we never pass it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from compress.io import atomic_write_bytes

SPARSITY = ("enable", "disable", "force")
_ELIGIBLE = re.compile(r"Layers eligible for sparse math:\s*(.*)")
_PICKED = re.compile(r"(?:picked sparse implementation for layers|sparse implementation.*?layers):\s*(.*)", re.I)


def available() -> tuple[bool, str]:
    """Can TensorRT engines be built and run here? (False, reason) on CPU-only machines."""
    try:
        import tensorrt  # noqa: F401
    except ImportError as e:
        return False, (f"the tensorrt package is not installed ({e}); install lottery's 'tensorrt' extra on a "
                       "machine with a CUDA GPU (wheels from NVIDIA's index) or run build_engine.sh there")
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA GPU is visible to torch (TensorRT engines need one)"
    return True, f"TensorRT {tensorrt.__version__} on {torch.cuda.get_device_name(0)}"


def shapes(input_shape: tuple[int, ...], batch: int | None, max_batch: int = 256, opt_batch: int = 64) -> dict:
    """min/opt/max input shapes of the optimization profile ({} for a static-batch ONNX)."""
    if batch:
        return {}
    dims = "x".join(str(d) for d in input_shape)
    return {"min": f"1x{dims}", "opt": f"{opt_batch}x{dims}", "max": f"{max_batch}x{dims}"}


def trtexec_command(onnx: str | Path, engine: str | Path, sparsity: str = "enable", fp16: bool = False,
                    int8: bool = False, profile: dict | None = None, calib_cache: str | None = None,
                    input_name: str = "input") -> list[str]:
    """The trtexec invocation equivalent to `build_engine` (TensorRT 10 flags)."""
    cmd = ["trtexec", f"--onnx={onnx}", f"--saveEngine={engine}",
           f"--sparsity={'disable' if sparsity == 'disable' else 'enable'}"]
    if fp16:
        cmd.append("--fp16")
    if int8:
        cmd.append("--int8")
        if calib_cache:
            cmd.append(f"--calib={calib_cache}")
    for key in ("min", "opt", "max"):
        if profile and key in profile:
            cmd.append(f"--{key}Shapes={input_name}:{profile[key]}")
    cmd += ["--verbose", "--profilingVerbosity=detailed", "--exportLayerInfo=layers.json"]
    return cmd


def write_build_script(directory: str | Path, cmd: list[str]) -> Path:
    """`build_engine.sh` beside the ONNX: build on a GPU machine by hand, log kept for the sparse-layer list."""
    text = ("#!/usr/bin/env bash\n# Build the TensorRT engine on a machine with a CUDA GPU and TensorRT 10 (trtexec).\n"
            "# The log lists the layers TensorRT ran with sparse kernels: grep 'Sparsity' build.log\n"
            "set -euo pipefail\ncd \"$(dirname \"$0\")\"\n" + shlex.join(cmd) + " 2>&1 | tee build.log\n")
    path = atomic_write_bytes(Path(directory) / "build_engine.sh", text.encode())
    path.chmod(0o755)
    return path


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def sparse_layers_from_log(lines: list[str] | str) -> dict[str, list[str]]:
    """Layers TensorRT found eligible for, and ran with, sparse kernels (from its verbose build log)."""
    eligible: list[str] = []
    picked: list[str] = []
    for line in lines.splitlines() if isinstance(lines, str) else lines:
        if m := _ELIGIBLE.search(line):
            eligible += _names(m.group(1))
        elif m := _PICKED.search(line):
            picked += _names(m.group(1))
    return {"eligible": eligible, "sparse": picked}


def build_engine(onnx_path: str | Path, engine_path: str | Path, sparsity: str = "enable", fp16: bool = False,
                 calib: Any = None, profile: dict | None = None, workspace_bytes: int = 1 << 30) -> dict[str, Any]:
    """Build and save a serialized engine with the TensorRT 10 Python API; needs a CUDA GPU.

    `calib`: a float32 tensor of calibration inputs (N, ...) for INT8 (entropy calibration), or None.
    Returns the build log's sparse-layer lists and the engine size.
    """
    import tensorrt as trt

    from export.errors import ExportError
    from export.trt_calibrator import make_calibrator

    class _Log(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.lines: list[str] = []

        def log(self, severity: Any, msg: str) -> None:  # keep everything: the sparsity lines are VERBOSE
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
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if sparsity != "disable":
        config.set_flag(trt.BuilderFlag.SPARSE_WEIGHTS)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    inp = network.get_input(0)
    if profile:
        prof = builder.create_optimization_profile()
        dims = [tuple(int(d) for d in profile[k].split("x")) for k in ("min", "opt", "max")]
        prof.set_shape(inp.name, *dims)
        config.add_optimization_profile(prof)
        if calib is not None:
            config.set_calibration_profile(prof)
    if calib is not None:
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = make_calibrator(calib, Path(engine_path).with_suffix(".calib"))
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        tail = " | ".join(logger.lines[-5:])
        raise ExportError(f"TensorRT could not build an engine from {onnx_path}: {tail}")
    data = bytes(plan)
    atomic_write_bytes(engine_path, data)
    return {"engine": str(engine_path), "size_bytes": len(data), "trt_version": trt.__version__,
            **sparse_layers_from_log(logger.lines), "log_lines": len(logger.lines)}
