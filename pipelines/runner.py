"""Run a pipeline: stages in order, gates after each, resume from finished stages, report at the end.

Layout: `<out>/pipelines/<name>-<digest>/<NN>-<stage>-<key>/result.json (+ artifacts)`. A stage's key is the
digest of its kind, its settings and its parent's key, so changing one stage's setting reruns it and every
later stage while the earlier ones are reused. `result.json` is written last and atomically: its presence
marks the stage done. Gate thresholds are not part of the key: they are re-checked from the recorded
metrics on every run, so relaxing a gate never retrains anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compress.errors import BackendUnavailableError, GateFailedError, LotteryError, RunDirError
from compress.io import load_json, save_json
from pipelines import gates as gate_defs
from pipelines import presets, report
from pipelines import spec as specs
from pipelines.stages.base import Progress, StageContext, StageResult

log = logging.getLogger("lottery")
RESULT = "result.json"
FORMAT = "lottery.stage/1"


@dataclass(frozen=True)
class Planned:
    index: int
    spec: specs.StageSpec
    key: str
    dir: Path
    available: tuple[bool, str]


def stage_key(kind: str, digest: str, parent: str) -> str:
    payload = json.dumps({"kind": kind, "hp": digest, "parent": parent}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


class Pipeline:
    """A validated pipeline spec; `run()` executes or resumes it. Mirrors `lottery run`."""

    def __init__(self, raw: dict[str, Any], source: str = "<spec>") -> None:
        self.raw, self.source = raw, source
        self.spec = specs.parse(raw, source)

    @classmethod
    def from_toml(cls, path: str | Path) -> Pipeline:
        return cls(specs.load(path), str(path))

    @classmethod
    def from_preset(cls, name: str = presets.DEFAULT) -> Pipeline:
        return cls(specs.load(presets.path(name)), f"preset {name}")

    @classmethod
    def load(cls, name_or_path: str | Path | None = None) -> Pipeline:
        """A preset by name, or a .toml file by path (default: the quickstart preset)."""
        if name_or_path is None:
            return cls.from_preset()
        p = Path(name_or_path)
        if p.suffix == ".toml" or p.exists() or "/" in str(name_or_path):
            return cls.from_toml(p)
        return cls.from_preset(str(name_or_path))

    def with_settings(self, sets: list[str] | None) -> Pipeline:
        """A copy with `STAGE.KEY=VALUE` overrides applied and validated again."""
        return self if not sets else Pipeline(specs.apply_sets(self.raw, sets), self.source + " with --set")

    def root(self, out: str | Path = "runs") -> Path:
        name = re.sub(r"[^A-Za-z0-9_.+-]+", "_", self.spec.name) or "pipeline"
        return Path(out) / "pipelines" / f"{name}-{self.spec.settings.digest()}"

    def _plan(self, root: Path) -> list[Planned]:
        parent = self.spec.settings.digest()
        out = []
        for i, s in enumerate(self.spec.stages, start=1):
            key = stage_key(s.kind, s.hp.digest(), parent)
            out.append(Planned(i, s, key, root / f"{i:02d}-{s.name}-{key}", s.stage.check_available(s.hp)))
            parent = key
        return out

    def plan(self, out: str | Path = "runs") -> list[dict[str, Any]]:
        """What `run` would do: per stage its key, folder and whether it is done, will run or will be skipped."""
        rows = []
        for p in self._plan(self.root(out)):
            state = "done" if (p.dir / RESULT).is_file() else "run" if p.available[0] else "skip"
            rows.append({"index": p.index, "name": p.spec.name, "kind": p.spec.kind, "key": p.key,
                         "dir": str(p.dir), "state": state, "reason": p.available[1],
                         "needs": list(p.spec.stage.needs), "gates": p.spec.gates,
                         "settings": p.spec.hp.non_default()})
        return rows

    def run(self, out: str | Path = "runs", keep_going: bool = False, require_all: bool = False,
            progress: Progress | None = None, check: bool = False) -> dict[str, Any]:
        """Run (or resume) every stage; returns report.json's content. With `check`, a failed gate raises."""
        # Absolute, so that artifact paths a stage returns never get its (relative) folder prefixed twice.
        root = self.root(Path(out).resolve())
        plan = self._plan(root)
        missing = [p for p in plan if not p.available[0]]
        if require_all and missing:
            raise BackendUnavailableError(
                "--require-all: " + "; ".join(f"stage '{p.spec.name}' cannot run here: {p.available[1]}"
                                              for p in missing) + ". Run without --require-all to skip them.")
        save_json(root / "pipeline.json", {"name": self.spec.name, "source": self.source,
                                           "digest": self.spec.settings.digest(), "spec": self.raw})
        run = _Run(self, root, progress or Progress(), keep_going)
        with _threads(self.spec.settings.threads):
            try:
                for p in plan:
                    run.step(p, len(plan))
            except BaseException as e:
                run.abort(e)
                raise
        result = run.finish()
        if check and result["status"] == "failed":
            raise GateFailedError(failed_summary(result))
        return result


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    """Small models train faster on one thread than on threads fighting other jobs for two cores."""
    if n <= 0:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def failed_summary(rep: dict[str, Any]) -> str:
    lines = [f"stage '{s['name']}': " + "; ".join(g["detail"] for g in s["gates"] if not g["passed"])
             for s in rep["stages"] if s["gate"] == "fail"]
    return "gate failed: " + " | ".join(lines)


class _Run:
    """State of one invocation: records per stage, finished results, the baseline."""

    def __init__(self, pipe: Pipeline, root: Path, progress: Progress, keep_going: bool) -> None:
        self.pipe, self.root, self.progress, self.keep_going = pipe, root, progress, keep_going
        self.records: list[dict[str, Any]] = []
        self.done: list[StageResult] = []
        self.baseline: StageResult | None = None
        self.stop_reason = ""
        self.start = time.perf_counter()

    def record(self, p: Planned, status: str, gate: str, reason: str = "") -> dict[str, Any]:
        rec = {"index": p.index, "name": p.spec.name, "kind": p.spec.kind, "key": p.key,
               "dir": str(p.dir.relative_to(self.root)), "status": status, "gate": gate, "gates": [],
               "reason": reason, "resumed": False, "wall_s": 0.0, "metrics": {}, "artifacts": {}, "notes": [],
               "settings": p.spec.hp.non_default(), "allowed": p.spec.gates}
        self.records.append(rec)
        return rec

    def step(self, p: Planned, total: int) -> None:
        if self.stop_reason:
            self.record(p, "not_run", "skipped", self.stop_reason)
            return
        if not p.available[0]:
            self.record(p, "skipped", "skipped", p.available[1])
            self.progress.stage_end(p.spec.name, "skipped", p.available[1])
            return
        have = {k for r in self.done for k in r.artifacts}
        lacking = [k for k in p.spec.stage.needs if k not in have]
        if lacking:
            reason = f"needs a {lacking[0]}, whose producing stage was skipped"
            self.record(p, "skipped", "skipped", reason)
            self.progress.stage_end(p.spec.name, "skipped", reason)
            return
        self.progress.stage_start(p.index, total, p.spec.name, p.spec.kind)
        rec = self.record(p, "running", "skipped")
        result_path = p.dir / RESULT
        if result_path.is_file():
            result = _load_result(result_path, p)
            rec["resumed"] = True
        else:
            result = self._execute(p)
            save_json(result_path, {"format": FORMAT, **result.to_dict(), "hparams": p.spec.hp.to_dict()})
        if p.spec.stage.baseline and self.baseline is None:
            self.baseline = result
        verdicts = gate_defs.evaluate(p.spec.gates, result.metrics, self.baseline.metrics if self.baseline else None)
        gate = gate_defs.verdict(verdicts)
        rec.update(status="passed" if gate == "pass" else "failed", gate=gate, gates=verdicts, wall_s=result.wall_s,
                   metrics=result.metrics, artifacts=result.artifacts, notes=result.notes, extra=result.extra)
        self.done.append(result)
        detail = "; ".join(v["detail"] for v in verdicts) or ", ".join(result.notes)
        self.progress.stage_end(p.spec.name, ("resumed, " if rec["resumed"] else "") + rec["status"], detail)
        if gate == "fail" and not self.keep_going:
            self.stop_reason = f"stopped after gate failure at stage '{p.spec.name}'"
        save_json(self.root / "report.json", {**self.report("running"), **_plot_fields(self.root)})

    def _execute(self, p: Planned) -> StageResult:
        ctx = StageContext(p.spec.name, p.spec.kind, p.index, p.key, p.dir, self.root, p.spec.hp,
                           self.pipe.spec.settings, list(self.done), self.baseline, self.progress)
        p.dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        out = p.spec.stage.run(ctx)
        arts = {}
        for kind, path in out.artifacts.items():
            path = Path(path) if Path(path).is_absolute() else p.dir / path
            arts[kind] = str(path.resolve().relative_to(self.root.resolve()))
        return StageResult(p.spec.name, p.spec.kind, p.key, _clean(out.metrics), arts,
                           round(time.perf_counter() - t0, 3), list(out.notes), _clean(out.extra))

    def report(self, status: str) -> dict[str, Any]:
        return report.build(self.pipe, self.root, self.records, status, time.perf_counter() - self.start,
                            self.baseline)

    def abort(self, e: BaseException) -> None:
        running = [r for r in self.records if r["status"] == "running"]
        for r in running:
            r["status"], r["reason"] = ("interrupted", "interrupted") if isinstance(e, KeyboardInterrupt) else (
                "error", str(e).splitlines()[0] if str(e) else type(e).__name__)
            self.progress.stage_end(r["name"], r["status"], r["reason"])
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "error"
        try:
            report.write(self.root, self.report(status), plots=False)
        except (OSError, LotteryError):  # never hide the original error behind a reporting one
            log.warning("could not write the partial report in %s", self.root)

    def finish(self) -> dict[str, Any]:
        failed = any(r["gate"] == "fail" for r in self.records)
        rep = self.report("failed" if failed else "passed")
        return report.write(self.root, rep, plots=True)


def _plot_fields(root: Path) -> dict[str, Any]:
    """Keep the previous report's plot record while a run rewrites report.json stage by stage."""
    try:
        old = load_json(root / "report.json")
    except (OSError, RunDirError):
        return {}
    return {k: old[k] for k in ("plots", "plots_key") if isinstance(old, dict) and k in old}


def _load_result(path: Path, p: Planned) -> StageResult:
    data = load_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != p.key:
        found = data.get("key") if isinstance(data, dict) else None
        raise RunDirError(f"{path} is not this stage's result (key {found!r}, expected {p.key!r}). It was left "
                          "untouched; move the folder away to redo the stage.")
    return StageResult.from_dict(data)


def _clean(obj: Any) -> Any:
    """Plain JSON values (tensor and numpy scalars become floats/ints)."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and not isinstance(obj, (int, float, str, bool)):
        return obj.item()
    return obj
