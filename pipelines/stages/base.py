"""What every stage sees and returns: pipeline-wide settings, the stage context, the stage output.

A stage is `run(ctx) -> StageOutput`: it reads earlier stages' artifacts through `ctx`, writes its own
files into `ctx.dir`, and returns metrics (units in the names) and artifact paths. Gates are checked by
the runner, never inside a stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compress.errors import RunDirError
from compress.hparams import NO_DIGEST, Hparams
from compress.hparams import field as hfield

EvalHook = Callable[[int, int, dict[str, float]], None]


@dataclass(frozen=True)
class PipelineSettings(Hparams):
    """The `[pipeline]` table: what every stage shares. Its digest names the pipeline's run directory."""

    name: str = hfield(default="pipeline", metadata=NO_DIGEST)
    description: str = hfield(default="", metadata=NO_DIGEST)
    model: str = "lenet_300_100"
    width: float = 1.0
    init: str = "default"
    dataset: str = "mnist5k"
    data_root: str | None = hfield(default=None, metadata=NO_DIGEST)
    seed: int = 0
    threads: int = hfield(default=0, metadata=NO_DIGEST)  # PyTorch intra-op threads while running; 0 = torch's default


@dataclass
class StageResult:
    """A finished stage as recorded in its `result.json` (artifact paths relative to the pipeline root)."""

    name: str
    kind: str
    key: str
    metrics: dict[str, Any]
    artifacts: dict[str, str]
    wall_s: float
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "key": self.key, "metrics": self.metrics,
                "artifacts": self.artifacts, "wall_s": self.wall_s, "notes": self.notes, "extra": self.extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StageResult:
        return cls(d["name"], d["kind"], d["key"], dict(d.get("metrics", {})), dict(d.get("artifacts", {})),
                   float(d.get("wall_s", 0.0)), list(d.get("notes", [])), dict(d.get("extra", {})))


@dataclass
class StageOutput:
    """What `run(ctx)` returns: numeric metrics, artifact paths (absolute or relative to the stage dir)."""

    metrics: dict[str, Any]
    artifacts: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Progress:
    """Silent progress reporter; the runner picks a rich or plain one (pipelines.progress)."""

    def stage_start(self, index: int, total: int, name: str, kind: str) -> None: ...

    def stage_end(self, name: str, status: str, detail: str) -> None: ...

    def train_hook(self, label: str) -> EvalHook | None:
        return None

    def message(self, text: str) -> None: ...


@dataclass
class StageContext:
    name: str
    kind: str
    index: int
    key: str
    dir: Path
    root: Path
    hp: Any
    settings: PipelineSettings
    earlier: list[StageResult]
    baseline: StageResult | None = None
    progress: Progress = field(default_factory=Progress)

    def data(self):
        """The pipeline's dataset (cached per process by compress.data)."""
        from compress import data as datasets

        return datasets.get(self.settings.dataset, data_root=self.settings.data_root)

    def model_spec(self):
        """The pipeline's architecture sized to its dataset."""
        from compress import finders

        data = self.data()
        return finders.model_spec(finders.ImpHparams(model=self.model_hparams()), data)

    def model_hparams(self):
        from compress.finders import ModelHparams

        return ModelHparams(self.settings.model, self.settings.width, self.settings.init)

    def data_hparams(self):
        from compress.finders import DataHparams

        return DataHparams(self.settings.dataset, self.settings.data_root)

    def provider(self, kind: str) -> StageResult:
        """The latest earlier stage that produced artifact `kind`."""
        for r in reversed(self.earlier):
            if kind in r.artifacts:
                return r
        raise RunDirError(f"stage '{self.name}' needs a '{kind}' artifact but no finished earlier stage has one.")

    def artifact(self, kind: str, result: StageResult | None = None) -> Path:
        """Absolute path of artifact `kind` from `result` (default: the latest earlier stage holding one)."""
        r = result or self.provider(kind)
        if kind not in r.artifacts:
            raise RunDirError(f"stage '{r.name}' recorded no '{kind}' artifact.")
        path = self.root / r.artifacts[kind]
        if not path.exists():
            raise RunDirError(f"{path} ('{kind}' of stage '{r.name}') is missing; the run directory was altered. "
                              f"Delete that stage's result.json to redo it.")
        return path
