"""The PyTorch eager deploy target for ticket directories: the reference every artifact is compared with.

Same harness as every other target (deploy_targets.latency): warm-up, p50/p90, throughput, a fixed thread count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deploy_targets import register
from deploy_targets.latency import sweep, torch_threads


class TorchTarget:
    name = "torch"

    def __init__(self, threads: int | None = 1, warmup: int = 20, iters: int = 200, device: str = "cpu",
                 **_: Any) -> None:
        self.threads, self.warmup, self.iters, self.device = threads, warmup, iters, device

    def available(self) -> tuple[bool, str]:
        import torch

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            return False, "no CUDA GPU on this machine (torch.cuda.is_available() is False)"
        return True, f"torch {torch.__version__} eager on {self.device}"

    def _model(self, artifact: Path) -> Any:
        from compress.ticket import Ticket

        return Ticket.load(artifact).model("final").eval().to(self.device)

    def evaluate(self, artifact: Path, x: Any, y: Any) -> dict[str, Any]:
        import numpy as np
        import torch

        model = self._model(artifact)
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
        with torch_threads(self.threads), torch.no_grad():
            logits = torch.cat([model(xt[i : i + 500].to(self.device)).cpu() for i in range(0, len(xt), 500)])
        logits_np = logits.numpy()
        labels = np.asarray(y)
        return {"test_acc": float((logits_np.argmax(1) == labels).mean()) if len(labels) else None,
                "logits": logits_np, "samples": len(labels), "providers": [f"torch-{self.device}"]}

    def benchmark(self, artifact: Path, input_shape: tuple[int, ...], batch_sizes: tuple[int, ...]) -> dict[str, Any]:
        import torch

        model = self._model(artifact)
        sync = torch.cuda.synchronize if self.device.startswith("cuda") else None

        def runner(b: int):
            xb = torch.randn(b, *input_shape, generator=torch.Generator().manual_seed(0)).to(self.device)

            def call() -> None:
                with torch.no_grad():
                    model(xb)

            return call

        with torch_threads(self.threads):
            batch = sweep(runner, batch_sizes, self.warmup, self.iters, sync)
        return {"target": self.name, "threads": self.threads, "batch": batch}


register("", TorchTarget)
