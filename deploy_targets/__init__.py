"""Where an artifact runs: a registry of deploy targets keyed by artifact suffix.

A target takes files (`.onnx`, `.plan`, `.tflite`, a ticket directory), never `nn.Module`s, and implements:
- `available() -> tuple[bool, str]`: can it run here, and if not, why (e.g. "no CUDA GPU");
- `evaluate(artifact, x, y) -> dict`: test accuracy and outputs on in-memory data;
- `benchmark(artifact, input_shape, batch_sizes) -> dict`: latency p50/p90 and throughput.
Modules in TARGET_MODULES register themselves on import (heavy backends are imported lazily inside them).
Factories take the keywords `threads`, `warmup`, `iters` (and `provider` for ONNX Runtime) and ignore
others, so `lottery bench` passes the same options to every target; `deploy_targets.latency` is the
shared timing harness.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from compress.errors import UsageError


class Target(Protocol):
    name: str

    def available(self) -> tuple[bool, str]: ...

    def evaluate(self, artifact: Path, x: Any, y: Any) -> dict[str, Any]: ...

    def benchmark(
        self, artifact: Path, input_shape: tuple[int, ...], batch_sizes: tuple[int, ...]
    ) -> dict[str, Any]: ...


_BY_SUFFIX: dict[str, Callable[..., Target]] = {}
# One line per target module (each calls `register` at import).
TARGET_MODULES: list[str] = [
    "deploy_targets.torch_eager",
    "deploy_targets.onnxruntime",
    "deploy_targets.tensorrt",
    "deploy_targets.arm_lce",
]


def register(suffix: str, factory: Callable[..., Target]) -> None:
    _BY_SUFFIX[suffix] = factory


def _load() -> None:
    for name in TARGET_MODULES:
        importlib.import_module(name)


def for_artifact(path: str | Path, **options: Any) -> Target:
    """The deploy target that runs `path`, chosen by its suffix (a ticket directory runs in PyTorch eager)."""
    _load()
    suffix = "" if Path(path).is_dir() else Path(path).suffix
    if suffix not in _BY_SUFFIX:
        raise UsageError(f"no deploy target runs '{suffix or Path(path).name}' files; supported: "
                         f"{', '.join(sorted(_BY_SUFFIX)) or 'none installed'}.")
    return _BY_SUFFIX[suffix](**options)


def suffixes() -> list[str]:
    _load()
    return sorted(_BY_SUFFIX)
