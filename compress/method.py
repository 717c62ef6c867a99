"""A method is defined once: settings, what it consumes and produces, what it measures, and `run`.

Every method (a finder such as imp or grasp, retrain, finetune, binarize, an exporter, bench, deploy) is
one module holding one `Method`: its frozen settings dataclass is the only home of its defaults, help text
and rules. The `lottery` command for it is a one-stage pipeline whose flags are generated from those
settings; a `lottery run` stage is the same object with the pipeline's scope (model, data, seed) injected.
This module is torch-free: the command table is built from it before any model exists.

`run(ctx) -> Output` reads its inputs through `ctx`, writes only inside `ctx.dir` and returns what it
measured. Gates are checked by the runner, never inside `run`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compress.catalog import INITS
from compress.hparams import Hparams, setting

ARTIFACT_KINDS = {
    "model": "a trained network (a ticket directory with final weights)",
    "ticket": "a ticket directory: architecture, init weights, mask, trained weights",
    "binary_ticket": "a ticket whose layers are binarized (exportable to LCE)",
    "predictions": "test-set top-1 predictions (for agreement with the baseline)",
    "onnx": "an ONNX file",
    "tflite": "a Larq Compute Engine .tflite file",
    "plan": "a TensorRT engine",
}


@dataclass(frozen=True)
class Scope(Hparams):
    """What a run works on: the model, the data and the seed(s). A pipeline's `[pipeline]` table and the global
    flags of every command; methods that take an input ticket read the model from it."""

    model: str = setting("lenet_300_100", short="m", help="Model name; see `lottery models`.")
    width: float = setting(1.0, lo=0.0, lo_open=True, help="Width multiplier of hidden layers/channels.")
    init: str = setting("default", choices=INITS, help="Weight initialization (default: the model's own).")
    dataset: str = setting("mnist5k", short="d", help="Dataset name; see `lottery datasets`.")
    data_root: str | None = setting(None, digest=False, help="Folder with torchvision dataset files.")
    seed: int = setting(0, lo=0, help="Seed of initialization and data order (finders: the first seed).")
    seeds: int = setting(1, lo=1, digest=False, help="Finders: run seeds seed..seed+N-1 (verdicts average them).")
    threads: int = setting(0, lo=0, digest=False, help="PyTorch threads while running; 0 = torch's default.")

    def seed_list(self) -> list[int]:
        return list(range(self.seed, self.seed + self.seeds))


@dataclass
class Record:
    """A finished stage as later stages see it: its metrics and its artifacts (absolute paths)."""

    name: str
    method: str
    key: str
    metrics: dict[str, Any]
    artifacts: dict[str, Path]
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)  # [{kind, path, sha256}] it was made from


@dataclass
class Output:
    """What `run` returns: metrics (units in the names), artifact paths, notes, method-specific details.

    `unavailable` says the method could only do its CPU-side part here (e.g. TensorRT without a GPU): the
    stage is recorded as skipped with that reason and the command exits 2."""

    metrics: dict[str, Any]
    artifacts: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    unavailable: str = ""


class Progress:
    """Silent progress reporter; the runner picks a rich or plain one (pipelines.progress)."""

    def stage_start(self, index: int, total: int, name: str, kind: str) -> None: ...

    def stage_end(self, name: str, status: str, detail: str) -> None: ...

    def train_hook(self, label: str) -> Callable[[int, int, dict[str, float]], None] | None:
        return None

    def message(self, text: str) -> None: ...


@dataclass
class Context:
    """Everything `run` may use. Inputs come from earlier stages or from a command's argument."""

    name: str
    method: Method
    settings: Any
    scope: Scope
    dir: Path
    inputs: dict[str, Path]
    records: dict[str, Record]
    baseline: Record | None = None
    progress: Progress = field(default_factory=Progress)

    def input(self, kind: str) -> Path:
        from compress.errors import RunDirError

        if kind not in self.inputs:
            raise RunDirError(f"stage '{self.name}' needs a '{kind}' artifact and none was given.")
        return self.inputs[kind]

    def record(self, kind: str) -> Record | None:
        """The record of the stage that produced input `kind` (None when it came from outside a pipeline)."""
        return self.records.get(kind)

    def data(self) -> Any:
        """The scope's dataset (cached per process by compress.data)."""
        from compress import data as datasets

        return datasets.get(self.scope.dataset, data_root=self.scope.data_root)


@dataclass(frozen=True)
class Method:
    """One method, defined once (see the module docstring)."""

    name: str
    settings: type[Hparams]
    run: Callable[[Context], Output]
    summary: str
    command: tuple[str, ...] = ()
    doc: str = ""
    needs: tuple[str, ...] = ()       # artifact kinds consumed; "a|b" takes the latest of either
    produces: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    gates: Callable[[Any], Mapping[str, float]] | Mapping[str, float] = field(default_factory=dict)
    baseline: bool = False            # its metrics are what relative gates compare against
    scope_flags: tuple[str, ...] = tuple(f for f in Scope.__dataclass_fields__)
    available: Callable[[Any], tuple[bool, str]] | None = None
    needs_from: Callable[[Any], tuple[str, ...]] | None = None  # settings that narrow `needs` (bench's artifact)

    def inputs(self, settings: Any) -> tuple[str, ...]:
        """The artifact kinds this method consumes with these settings."""
        return self.needs if self.needs_from is None else self.needs_from(settings)

    def default_gates(self, settings: Any) -> dict[str, float]:
        return dict(self.gates(settings) if callable(self.gates) else self.gates)

    def check_available(self, settings: Any) -> tuple[bool, str]:
        return (True, "") if self.available is None else self.available(settings)


INPUT_SCOPE = ("dataset", "data_root", "seed", "threads")  # methods that take a ticket read the model from it
