"""The TensorRT deploy target for `.plan` engines (TensorRT 10 API; device buffers are torch.cuda tensors).

Needs `tensorrt` and a CUDA GPU: `available()` says why not otherwise, and every method then raises
`BackendUnavailableError` (exit code 2 in the CLI) instead of failing deep inside a library.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from compress.errors import BackendUnavailableError
from deploy_targets import register
from deploy_targets.latency import sweep
from export.errors import ArtifactError
from export.trt_engine import tensorrt_available

if TYPE_CHECKING:  # both load lazily: `lottery --help` and CPU-only machines never import them
    import tensorrt as trt
    import torch

    Infer = Callable[[torch.Tensor], torch.Tensor]


class TensorRTTarget:
    name = "tensorrt"

    def __init__(self, threads: int | None = None, warmup: int = 20, iters: int = 200, **_: Any) -> None:
        self.threads, self.warmup, self.iters = threads, warmup, iters

    def available(self) -> tuple[bool, str]:
        return tensorrt_available()

    def _engine(self, artifact: Path) -> trt.ICudaEngine:
        ok, reason = self.available()
        if not ok:
            raise BackendUnavailableError(f"cannot run {artifact}: {reason}.")
        import tensorrt as trt

        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))  # kept: it must outlive its engines
        engine = self._runtime.deserialize_cuda_engine(Path(artifact).read_bytes())
        if engine is None:
            raise ArtifactError(f"{artifact} is not a TensorRT engine for this TensorRT version and GPU (engines "
                                "are tied to both); rebuild it with `lottery export tensorrt` or build_engine.sh.")
        return engine

    def _runner(self, engine: trt.ICudaEngine) -> tuple[Infer, int | None]:
        """A function logits = f(x_cuda) executing `engine` on torch's current CUDA stream."""
        import tensorrt as trt
        import torch

        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inp = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        out = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        ctx = engine.create_execution_context()
        stream = torch.cuda.current_stream()

        def infer(x: torch.Tensor) -> torch.Tensor:
            x = x.contiguous()
            if not ctx.set_input_shape(inp, tuple(x.shape)):
                raise ArtifactError(f"the engine does not take inputs of shape {tuple(x.shape)} (outside its "
                                    "optimization profile); rebuild it with a larger --max-batch.")
            dims = ctx.get_tensor_shape(out)
            y = torch.empty(tuple(dims[i] for i in range(len(dims))), dtype=torch.float32, device="cuda")
            ctx.set_tensor_address(inp, int(x.data_ptr()))
            ctx.set_tensor_address(out, int(y.data_ptr()))
            if not ctx.execute_async_v3(stream.cuda_stream):
                raise ArtifactError("TensorRT failed to execute the engine (see its log).")
            return y

        static = engine.get_tensor_shape(inp)[0]
        return infer, (static if static > 0 else None)

    def logits(self, artifact: Path, x: Any, batch_size: int = 256) -> np.ndarray[Any, Any]:
        import torch

        infer, static = self._runner(self._engine(artifact))
        xs = torch.as_tensor(np.asarray(x, dtype=np.float32))
        bs, outs = static or batch_size, []
        for i in range(0, len(xs), bs):
            chunk = xs[i : i + bs]
            n = len(chunk)
            if static and n < static:
                chunk = torch.cat([chunk, chunk.new_zeros((static - n, *chunk.shape[1:]))])
            outs.append(infer(chunk.cuda())[:n].cpu())
        torch.cuda.synchronize()
        return torch.cat(outs).numpy()

    def evaluate(self, artifact: Path, x: Any, y: Any) -> dict[str, Any]:
        logits = self.logits(artifact, x)
        labels = np.asarray(y)
        return {"test_acc": float((logits.argmax(1) == labels).mean()), "logits": logits, "samples": len(labels),
                "providers": ["TensorRT"]}

    def benchmark(self, artifact: Path, input_shape: tuple[int, ...], batch_sizes: tuple[int, ...]) -> dict[str, Any]:
        import torch

        infer, static = self._runner(self._engine(artifact))

        def runner(b: int) -> Callable[[], torch.Tensor]:
            x = torch.randn(static or b, *input_shape, device="cuda")
            return lambda: infer(x)

        sizes = tuple(b for b in batch_sizes if static is None or b == static) or ((static,) if static else ())
        return {"target": self.name, "static_batch": static, "device": torch.cuda.get_device_name(0),
                "batch": sweep(runner, sizes, self.warmup, self.iters, sync=torch.cuda.synchronize)}


register(".plan", TensorRTTarget)
register(".engine", TensorRTTarget)
