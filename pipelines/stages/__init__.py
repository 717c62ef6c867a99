"""Stage registry: each stage is one module that calls `register(Stage(...))` on import.

A `Stage` declares what it needs from earlier stages (artifact kinds such as `ticket`, `onnx`), what it
produces, which metrics it reports (the only ones a gate may check) and, for hardware that may be absent,
an `available(hp) -> (ok, reason)` check. The spec validator uses these declarations to refuse impossible
orders and gates on metrics a stage never reports before anything runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from compress.errors import UnknownNameError
from compress.hparams import Hparams
from pipelines.stages.base import PipelineSettings, StageContext, StageOutput, StageResult


@dataclass(frozen=True)
class Stage:
    kind: str
    hparams: type[Hparams]
    run: Callable[[StageContext], StageOutput]
    description: str
    needs: tuple[str, ...] = ()
    produces: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    baseline: bool = False  # its metrics are what `max_acc_drop` and `min_size_ratio` compare against
    available: Callable[[Any], tuple[bool, str]] | None = None
    defaults: Callable[[PipelineSettings], dict[str, Any]] | None = None  # dotted settings applied first

    def check_available(self, hp: Any) -> tuple[bool, str]:
        return (True, "") if self.available is None else self.available(hp)


_REGISTRY: dict[str, Stage] = {}
# One line per stage module (each calls `register` at import).
STAGE_MODULES: list[str] = [
    "pipelines.stages.dense",
    "pipelines.stages.imp",
    "pipelines.stages.bench_torch",
    "pipelines.stages.finetune",
    "pipelines.stages.export_onnx",
    "pipelines.stages.bench_onnx",
    "pipelines.stages.tensorrt",
    "pipelines.stages.mpt",
    "pipelines.stages.binarize",
    "pipelines.stages.export_lce",
    "pipelines.stages.bench_edge",
]


def register(stage: Stage) -> None:
    _REGISTRY[stage.kind] = stage


def _load() -> None:
    for module in STAGE_MODULES:
        importlib.import_module(module)


def get(kind: str) -> Stage:
    _load()
    if kind not in _REGISTRY:
        raise UnknownNameError("stage", kind, _REGISTRY)
    return _REGISTRY[kind]


def names() -> dict[str, str]:
    _load()
    return {k: s.description for k, s in sorted(_REGISTRY.items())}


__all__ = ["PipelineSettings", "Stage", "StageContext", "StageOutput", "StageResult", "get", "names", "register"]
