"""Run a pipeline: stages in order, gates after each, resume from finished stages, report at the end.

Layouts:
- `lottery run`: `<out>/pipelines/<name>-<digest>/<NN>-<stage>-<key>/result.json (+ artifacts)`, report at the
  pipeline root;
- a command (a one-stage pipeline): the stage folder is the root: `<out>/<model>-<dataset>/<method>-<key>/`
  for methods that start from the scope, `<input's folder or out>/<method>-<key>/` for methods given an input.
A stage's key is the digest of its method, its settings and its parent's key (the scope, or the input's
content), so changing one stage's setting reruns it and every later stage while earlier ones are reused.
`result.json` is written last and atomically: its presence marks the stage done. Gate thresholds are not
part of the key: they are re-checked from the recorded metrics on every run, so relaxing a gate never
retrains anything.
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

from compress.errors import BackendUnavailableError, GateFailedError, LotteryError, RunDirError, UsageError
from compress.io import load_json, save_json
from compress.method import Context, Output, Progress, Record
from pipelines import artifacts as arts
from pipelines import gates as gate_defs
from pipelines import presets, report
from pipelines import spec as specs

log = logging.getLogger("lottery")


@dataclass(frozen=True)
class Planned:
    index: int
    spec: specs.StageSpec
    key: str
    dir: Path
    available: tuple[bool, str]
    input: tuple[str, Path] | None  # (kind, path) of an explicit input


def stage_key(kind: str, digest: str, parent: str) -> str:
    payload = json.dumps({"kind": kind, "hp": digest, "parent": parent}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("_") or "x"


class Pipeline:
    """A validated pipeline spec; `run()` executes or resumes it. Mirrors `lottery run` and every command."""

    def __init__(self, raw: dict[str, Any], source: str = "<spec>", single: bool = False,
                 input_options: dict[str, Any] | None = None) -> None:
        self.raw, self.source, self.single = raw, source, single
        self.input_options = input_options or {}
        self.spec = specs.parse(raw, source, single)
        if single and len(self.spec.stages) != 1:
            raise ValueError("a command is a one-stage pipeline")

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
        if not sets:
            return self
        return Pipeline(specs.apply_sets(self.raw, sets), self.source + " with --set", self.single, self.input_options)

    def root(self, out: str | Path = "runs") -> Path:
        if self.single:
            return self._plan(Path(out))[0].dir
        return Path(out) / "pipelines" / f"{_safe(self.spec.name)}-{self.spec.settings.digest()}"

    def _plan(self, out_or_root: Path) -> list[Planned]:
        parent = self.spec.settings.scope().digest()
        rows = []
        for i, s in enumerate(self.spec.stages, start=1):
            explicit = None
            stage_parent = parent
            if s.input is not None:
                need = s.method.inputs(s.hp)[0] if s.method.needs else "model"
                explicit = arts.resolve_input(s.input, need, **self.input_options)
                stage_parent = stage_key("input", arts.content_sha256(explicit[1]), parent)
            key = stage_key(s.kind, s.hp.digest(), stage_parent)
            if self.single:
                base = out_or_root
                if explicit is None:
                    sc = self.spec.settings
                    base = out_or_root / f"{_safe(sc.model)}-{_safe(sc.dataset)}"
                folder = base / f"{s.kind}-{key}"
            else:
                folder = out_or_root / f"{i:02d}-{s.name}-{key}"
            rows.append(Planned(i, s, key, folder, s.method.check_available(s.hp), explicit))
            parent = key
        return rows

    def plan(self, out: str | Path = "runs", trust_code: bool = False) -> list[dict[str, Any]]:
        """What `run` would do: per stage its key, folder and whether it is done, will run or will be skipped.
        Validates like `run` (names, dataset, model) without writing anything."""
        from compress.models import external

        with external.restricted({"" if self.single else self.spec.settings.model}, trust_code):
            self.check()
        rows = []
        root = self.root(out)
        for p in self._plan(root if not self.single else Path(out)):
            done = (p.dir / arts.RESULT).is_file()
            state = "done" if done else "run" if p.available[0] else "skip"
            if not done and state == "run" and (p.dir / arts.STAGE).is_file():
                state = "resume"  # started before: finished parts are read back
            rows.append({"index": p.index, "name": p.spec.name, "kind": p.spec.kind, "key": p.key,
                         "dir": str(p.dir), "state": state, "reason": p.available[1],
                         "needs": list(p.spec.method.needs), "gates": p.spec.gates,
                         "settings": p.spec.hp.non_default()})
        return rows

    def previous(self, out: str | Path = "runs") -> str:
        """What an earlier run of this pipeline left: running now (and by whom), interrupted, or its status."""
        from compress import owner
        from compress.lock import holder

        root = self.root(Path(out).resolve())
        who = holder(root)
        if who and who.get("alive") is not False:
            return f"running now: {owner.describe(who)}"
        try:
            rep = load_json(root / "report.json") if (root / "report.json").is_file() else {}
        except RunDirError:
            return "report.json is unreadable"
        status = rep.get("status") if isinstance(rep, dict) else None
        if status == "running":
            return "interrupted (the process that ran it is gone; running it again resumes)"
        return f"last run: {status}" if status else "never run"

    def check(self) -> None:
        """Everything that can be checked before a folder is written: the dataset loads and passes its checks,
        the model (a registry name, tv:, or an importable module:factory) builds and fits the data's shape."""
        from compress import data as datasets
        from compress.models import ModelSpec, build, check_input

        sc = self.spec.settings
        from_scope = [s for s in self.spec.stages if s.input is None and not s.method.needs]
        if not from_scope and all(s.input is not None for s in self.spec.stages[:1]):
            return  # every stage works on its input: the input's own scope was checked when it was made
        data = datasets.get(sc.dataset, data_root=sc.data_root)
        for note in data.notes:
            log.warning("dataset %s: %s", data.name, note)
        if from_scope:
            spec = ModelSpec(sc.model, data.input_shape, data.num_classes, sc.width, sc.init)
            check_input(build(spec, seed=0), data.input_shape, data.num_classes, sc.model)

    def run(self, out: str | Path = "runs", keep_going: bool = False, require_all: bool = False,
            progress: Progress | None = None, check: bool = False, trust_code: bool = False,
            trusted_model: str | None = None) -> dict[str, Any]:
        """Run (or resume) every stage; returns report.json's content. With `check`, a failed gate raises.

        Holds an exclusive lock on the run directory for the whole run (a second identical run exits at once,
        naming the holder). A module:factory model is imported only when the user named it (`trusted_model`,
        the spec's own `pipeline.model`) or under `trust_code`."""
        from compress.models import external

        named = (trusted_model or "") if self.single else self.spec.settings.model
        with external.restricted({named}, trust_code):
            return self._run_checked(out, keep_going, require_all, progress, check)

    def _run_checked(self, out: str | Path, keep_going: bool, require_all: bool, progress: Progress | None,
                     check: bool) -> dict[str, Any]:
        # Absolute, so that artifact paths a stage returns never get its (relative) folder prefixed twice.
        out = Path(out).resolve()
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out} is a file; give a folder (it is created if missing).")
        root = self.root(out)
        plan = self._plan(out if self.single else root)
        missing = [p for p in plan if not p.available[0]]
        if self.single and missing:  # a command has nothing to skip to: say why it cannot run
            raise BackendUnavailableError(f"{missing[0].spec.kind} cannot run here: {missing[0].available[1]}.")
        if require_all and missing:
            raise BackendUnavailableError(
                "--require-all: " + "; ".join(f"stage '{p.spec.name}' cannot run here: {p.available[1]}"
                                              for p in missing) + ". Run without --require-all to skip them.")
        with _threads(self.spec.settings.threads):
            self.check()
        with _locked(root):
            return self._run(root, plan, keep_going, require_all, progress, check)

    def _run(self, root: Path, plan: list[Planned], keep_going: bool, require_all: bool,
             progress: Progress | None, check: bool) -> dict[str, Any]:
        if not self.single:
            save_json(root / "pipeline.json", {"name": self.spec.name, "source": self.source,
                                               "digest": self.spec.settings.digest(), "spec": self.raw})
        run = _Run(self, root, progress or Progress(), keep_going, require_all)
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


def _threads(n: int) -> contextlib.AbstractContextManager[None]:
    """Small models train faster on one thread than on threads fighting other jobs for two cores (0: torch's
    default). The same helper every latency measurement uses."""
    from deploy_targets.latency import torch_threads

    return torch_threads(n or None)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """The run directory exclusively ours; what a killed earlier run left (scratch folders, a report saying
    "running") is cleaned up or marked interrupted first, since its holder is gone."""
    from compress import scratch
    from compress.lock import RunLock

    lock = RunLock(root).acquire()
    try:
        if lock.notice:
            log.warning("%s", lock.notice)
        for stale in scratch.remove_stale(root):
            log.info("removed %s, left by a run that was killed", stale)
        _mark_interrupted(root)
        yield
    finally:
        lock.release()


def _mark_interrupted(root: Path) -> None:
    path = root / "report.json"
    try:
        rep = load_json(path) if path.is_file() else None
    except RunDirError:
        return
    if isinstance(rep, dict) and rep.get("status") == "running":
        rep["status"] = "interrupted"
        for st in rep.get("stages", []) or [rep]:
            if st.get("status") == "running":
                st["status"], st["reason"] = "interrupted", "the process running it was killed"
        rep.setdefault("notes", []).append("found marked 'running' by a process that is gone: interrupted")
        save_json(path, rep)


def failed_summary(rep: dict[str, Any]) -> str:
    stages = rep["stages"] if rep.get("stages") else [rep]
    lines = [f"stage '{s['name']}': " + "; ".join(g["detail"] for g in s["gates"] if not g["passed"])
             for s in stages if s.get("gate") == "fail"]
    return "gate failed: " + " | ".join(lines)


class _Run:
    """State of one invocation: records per stage, finished results, the baseline."""

    def __init__(self, pipe: Pipeline, root: Path, progress: Progress, keep_going: bool, require_all: bool) -> None:
        self.pipe, self.root, self.progress, self.keep_going = pipe, root, progress, keep_going
        self.require_all = require_all
        self.records: list[dict[str, Any]] = []
        self.done: list[Record] = []
        self.baseline: Record | None = None
        self.stop_reason = ""
        self.start = time.perf_counter()

    def record(self, p: Planned, status: str, gate: str, reason: str = "") -> dict[str, Any]:
        rec = report.stage_record(p, self.root, status, gate, reason)
        self.records.append(rec)
        return rec

    def _inputs(self, p: Planned) -> tuple[dict[str, Path], dict[str, Record]] | str:
        """The stage's inputs by kind (and the records that measured them), or why they are missing."""
        inputs: dict[str, Path] = {}
        records: dict[str, Record] = {}
        if p.input is not None:
            kind, path = p.input
            inputs[kind] = path
            rec = arts.record_of(path)
            if rec is not None:
                records[kind] = rec
            return inputs, records
        for need in p.spec.method.inputs(p.spec.hp):
            kinds = need.split("|")
            found = next(((k, r) for r in reversed(self.done) for k in kinds if k in r.artifacts), None)
            if found is None:
                return f"needs a {need.replace('|', ' or ')}, whose producing stage was skipped"
            kind, rec = found
            inputs[kind] = rec.artifacts[kind]
            records[kind] = rec
        return inputs, records

    def step(self, p: Planned, total: int) -> None:
        if self.stop_reason:
            self.record(p, "not_run", "skipped", self.stop_reason)
            return
        if not p.available[0]:
            self.record(p, "skipped", "skipped", p.available[1])
            self.progress.stage_end(p.spec.name, "skipped", p.available[1])
            return
        got = self._inputs(p)
        if isinstance(got, str):
            self.record(p, "skipped", "skipped", got)
            self.progress.stage_end(p.spec.name, "skipped", got)
            return
        inputs, records = got
        self.progress.stage_start(p.index, total, p.spec.name, p.spec.kind)
        rec = self.record(p, "running", "skipped")
        rec["inputs"] = [{"kind": k, "path": str(v), "sha256": arts.content_sha256(v)} for k, v in inputs.items()]
        result_path = p.dir / arts.RESULT
        if result_path.is_file() and _seeds_match(result_path, self.pipe.spec.settings.seeds):
            result = _load_result(result_path, p)
            rec["resumed"] = True
        else:
            result, out = self._execute(p, inputs, records)
            if out.unavailable:
                self._unavailable(p, rec, out, result)
                return
            save_json(result_path, {"format": arts.FORMAT, **_result_dict(result, p, rec, self.pipe),
                                    "wall_s": rec["wall_s"]})
        if p.spec.method.baseline and self.baseline is None:
            self.baseline = result
        verdicts = gate_defs.evaluate(p.spec.gates, result.metrics, self.baseline.metrics if self.baseline else None)
        gate = gate_defs.verdict(verdicts)
        rec.update(status="passed" if gate == "pass" else "failed", gate=gate, gates=verdicts,
                   metrics=result.metrics, artifacts=report.rel_artifacts(result.artifacts, self.root),
                   notes=result.notes, details=result.details)
        if rec["resumed"]:
            rec["wall_s"] = float(load_json(result_path).get("wall_s", 0.0))
        self.done.append(result)
        detail = "; ".join(v["detail"] for v in verdicts) or ", ".join(result.notes)
        self.progress.stage_end(p.spec.name, ("resumed, " if rec["resumed"] else "") + rec["status"], detail)
        if gate == "fail" and not self.keep_going:
            self.stop_reason = f"stopped after gate failure at stage '{p.spec.name}'"
        if not self.pipe.single:
            report.write(self.root, self.report("running"), plots=False, keep_plots=True)

    def _execute(self, p: Planned, inputs: dict[str, Path], records: dict[str, Record]) -> tuple[Record, Output]:
        ctx = Context(p.spec.name, p.spec.method, p.spec.hp, self.pipe.spec.settings.scope(), p.dir, inputs,
                      records, self.baseline, self.progress)
        _claim(p)
        t0 = time.perf_counter()
        out = p.spec.method.run(ctx)
        self.records[-1]["wall_s"] = round(time.perf_counter() - t0, 3)
        paths = {k: (Path(v) if Path(v).is_absolute() else p.dir / v).resolve() for k, v in out.artifacts.items()}
        return Record(p.spec.name, p.spec.kind, p.key, _clean(out.metrics), paths, list(out.notes),
                      _clean(out.details), list(self.records[-1].get("inputs", []))), out

    def _unavailable(self, p: Planned, rec: dict[str, Any], out: Output, result: Record) -> None:
        rec.update(status="skipped", gate="skipped", reason=out.unavailable, metrics=result.metrics,
                   artifacts=report.rel_artifacts(result.artifacts, self.root), notes=result.notes,
                   details=result.details)
        self.progress.stage_end(p.spec.name, "skipped", out.unavailable)
        if self.pipe.single or self.require_all:
            self.finish()
            raise BackendUnavailableError(f"stage '{p.spec.name}' could not finish here: {out.unavailable}. "
                                          f"What it could do is in {p.dir}.")

    def report(self, status: str) -> dict[str, Any]:
        return report.build(self.pipe, self.root, self.records, status, time.perf_counter() - self.start,
                            self.baseline)

    def abort(self, e: BaseException) -> None:
        if isinstance(e, BackendUnavailableError) and any(r["status"] == "skipped" for r in self.records[-1:]):
            return  # already reported by _unavailable
        running = [r for r in self.records if r["status"] == "running"]
        for r in running:
            r["status"], r["reason"] = ("interrupted", "interrupted") if isinstance(e, KeyboardInterrupt) else (
                "error", str(e).splitlines()[0] if str(e) else type(e).__name__)
            self.progress.stage_end(r["name"], r["status"], r["reason"])
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "error"
        if not isinstance(e, (LotteryError, KeyboardInterrupt)):
            _error_log(self.root, e)
        try:
            report.write(self.root, self.report(status), plots=False)
        except (OSError, LotteryError):  # never hide the original error behind a reporting one
            log.warning("could not write the partial report in %s", self.root)

    def finish(self) -> dict[str, Any]:
        failed = any(r["gate"] == "fail" for r in self.records)
        skipped = self.pipe.single and any(r["status"] == "skipped" for r in self.records)
        rep = self.report("failed" if failed else "skipped" if skipped else "passed")
        return report.write(self.root, rep, plots=not self.pipe.single)


def _error_log(root: Path, e: BaseException) -> None:
    """An unexpected error's traceback, kept in the run dir (the CLI shows one paragraph and points here)."""
    import traceback

    from compress.io import atomic_write_bytes

    try:
        text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        e.error_log = atomic_write_bytes(root / "error.log", text.encode())  # type: ignore[attr-defined]
    except OSError:
        pass


def _claim(p: Planned) -> None:
    """Mark the stage folder as this stage's before anything is written into it; refuse a folder of another."""
    stamp = p.dir / arts.STAGE
    if stamp.is_file():
        data = load_json(stamp)
        if not isinstance(data, dict) or data.get("key") != p.key or data.get("method") != p.spec.kind:
            found = f"{data.get('method', '?')}-{data.get('key', '?')}" if isinstance(data, dict) else "?"
            raise RunDirError(f"{p.dir} belongs to another run ({found}); expected {p.spec.kind}-{p.key}. Nothing "
                              "was changed; move it away or use another --out.")
        return
    save_json(stamp, {"method": p.spec.kind, "key": p.key, "settings": p.spec.hp.to_dict(),
                      "non_default": p.spec.hp.non_default()})


def _seeds_match(path: Path, seeds: int) -> bool:
    data = load_json(path)
    return not isinstance(data, dict) or int(data.get("scope", {}).get("seeds", 1)) >= seeds


def _result_dict(r: Record, p: Planned, rec: dict[str, Any], pipe: Pipeline) -> dict[str, Any]:
    return {"name": r.name, "method": r.method, "key": r.key, "metrics": r.metrics,
            "artifacts": {k: str(v.relative_to(p.dir)) if v.is_relative_to(p.dir) else str(v)
                          for k, v in r.artifacts.items()},
            "inputs": rec.get("inputs", []), "notes": r.notes, "details": r.details,
            "settings": p.spec.hp.to_dict(), "scope": pipe.spec.settings.scope().to_dict()}


def _load_result(path: Path, p: Planned) -> Record:
    data = load_json(path)
    if not isinstance(data, dict) or data.get("format") != arts.FORMAT or data.get("key") != p.key:
        found = data.get("key") if isinstance(data, dict) else None
        raise RunDirError(f"{path} is not this stage's result (key {found!r}, expected {p.key!r}). It was left "
                          "untouched; move the folder away to redo the stage.")
    paths = {k: (p.dir / v).resolve() for k, v in data.get("artifacts", {}).items()}
    for kind, path_ in paths.items():
        if not path_.exists():
            raise RunDirError(f"{path_} ('{kind}' of stage '{p.spec.name}') is missing; the run directory was "
                              f"altered. Delete {path} to redo that stage.")
    return Record(data["name"], data["method"], data["key"], dict(data.get("metrics", {})), paths,
                  list(data.get("notes", [])), dict(data.get("details", {})), list(data.get("inputs", [])))


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
