"""The ONNX Runtime deploy target for `.onnx` artifacts: CPU here; CUDA / TensorRT EPs where present.

A requested provider that ORT cannot load is an error, never a silent CPU fallback (see
`export.ort_session`). Sparse initializers are densified by ORT at load: no sparse speedup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deploy_targets import register
from deploy_targets.latency import sweep
from export.errors import ArtifactError
from export.ort_session import PROVIDERS, input_batch, run, session


class OnnxRuntimeTarget:
    name = "onnxruntime"

    def __init__(self, provider: str = "cpu", threads: int | None = 1, warmup: int = 10, iters: int = 100,
                 **_: Any) -> None:
        self.provider, self.threads, self.warmup, self.iters = provider or "cpu", threads, warmup, iters

    def available(self) -> tuple[bool, str]:
        try:
            import onnxruntime as ort
        except ImportError as e:
            return False, f"onnxruntime is not installed ({e}); install the onnx extra of lottery"
        wanted = PROVIDERS.get(self.provider, self.provider)
        if wanted not in ort.get_available_providers():
            return False, f"{wanted} is not in this onnxruntime build ({', '.join(ort.get_available_providers())})"
        return True, f"onnxruntime {ort.__version__} on {wanted}"

    def _session(self, artifact: Path) -> Any:
        artifact = Path(artifact)
        if not artifact.is_file():
            raise ArtifactError(f"{artifact} does not exist; export one with `lottery export onnx RUN_DIR`.")
        return session(artifact, self.provider, self.threads)

    def metadata(self, artifact: Path) -> dict[str, str]:
        """The artifact's `lottery.*` metadata_props (ticket dir and digest, dataset, density, accuracy)."""
        meta = self._session(artifact).get_modelmeta().custom_metadata_map
        return {k.removeprefix("lottery."): v for k, v in meta.items() if k.startswith("lottery.")}

    def evaluate(self, artifact: Path, x: Any, y: Any) -> dict[str, Any]:
        sess = self._session(artifact)
        logits = run(sess, np.asarray(x, dtype=np.float32))
        labels = np.asarray(y)
        return {"test_acc": float((logits.argmax(1) == labels).mean()) if len(labels) else float("nan"),
                "logits": logits, "providers": sess.get_providers(), "samples": len(labels)}

    def benchmark(self, artifact: Path, input_shape: tuple[int, ...], batch_sizes: tuple[int, ...]) -> dict[str, Any]:
        sess = self._session(artifact)
        static = input_batch(sess)
        name = sess.get_inputs()[0].name
        rng = np.random.default_rng(0)

        def runner(b: int):
            feed = {name: rng.standard_normal((static or b, *input_shape)).astype(np.float32)}
            return lambda: sess.run(None, feed)

        sizes = tuple(b for b in batch_sizes if static is None or b == static) or ((static,) if static else ())
        return {"target": self.name, "providers": sess.get_providers(), "threads": self.threads,
                "static_batch": static, "batch": sweep(runner, sizes, self.warmup, self.iters)}


register(".onnx", OnnxRuntimeTarget)
