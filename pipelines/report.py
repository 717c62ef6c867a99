"""The one report contract: `report.json` (machine) and, for pipelines, `report.md` (people) with plots.

Every command and every pipeline writes `report.json` valid against `pipelines/report.schema.json`
(shipped in the package; `schema_version` names its version):
{schema_version, kind: "method"|"pipeline", method, name, status, run_dir, source, scope, settings,
 inputs: [{kind, path, sha256}], metrics, artifacts, gate, gates: [{gate, metric, measured, allowed, passed,
 detail}], notes, details, wall_s, machine, baseline (pipelines), stages: [stage records] (pipelines)}.
Keys are snake_case with units in the names (`test_acc` a fraction, `wall_s`, `file_bytes`,
`latency_ms_p50`); non-finite numbers are written as null (compress.io). A stage record has the same fields
as a method report minus scope/machine/stages, plus index, key, dir, reason and resumed.
Status: passed | failed (a gate) | skipped (with reason) | not_run | error | interrupted | running.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

from compress.io import atomic_write_bytes, save_json
from compress.method import Record

SCHEMA_VERSION = 1
SCHEMA = Path(__file__).with_name("report.schema.json")
MAIN_ARTIFACTS = ("tflite", "plan", "onnx", "binary_ticket", "ticket", "model")


def machine() -> dict[str, Any]:
    """The facts of the machine a measurement was made on (never a guess about other machines)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (None, None, None)
    return {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_1m": load[0]}


def stage_record(p: Any, root: Path, status: str, gate: str, reason: str = "") -> dict[str, Any]:
    """The skeleton of a stage's record, filled in by the runner as the stage runs."""
    return {"index": p.index, "name": p.spec.name, "kind": "method", "method": p.spec.kind, "key": p.key,
            "dir": str(p.dir.relative_to(root)) if p.dir != root and p.dir.is_relative_to(root) else ".",
            "status": status, "gate": gate, "gates": [], "reason": reason, "resumed": False, "wall_s": 0.0,
            "inputs": [], "metrics": {}, "artifacts": {}, "notes": [], "details": {},
            "settings": p.spec.hp.to_dict(), "allowed": p.spec.gates}


def rel_artifacts(paths: dict[str, Path], root: Path) -> dict[str, str]:
    return {k: str(v.relative_to(root)) if v.is_relative_to(root) else str(v) for k, v in paths.items()}


def build(pipe: Any, root: Path, records: list[dict[str, Any]], status: str, wall_s: float,
          baseline: Record | None) -> dict[str, Any]:
    s = pipe.spec.settings
    common = {"schema_version": SCHEMA_VERSION, "status": status, "run_dir": str(root), "source": pipe.source,
              "scope": s.scope().to_dict(), "machine": machine()}
    if pipe.single:
        rec = dict(records[0]) if records else {}
        return {**common, **{k: v for k, v in rec.items() if k not in ("index", "dir", "allowed")},
                "kind": "method", "status": status, "wall_s": round(wall_s, 3)}
    last = next((r for r in reversed(records) if r["status"] in ("passed", "failed")), None)
    return {**common, "kind": "pipeline", "method": "pipeline", "name": s.name, "description": s.description,
            "digest": s.digest(), "settings": {"stages": [r["name"] for r in records]},
            "inputs": [], "metrics": dict(last["metrics"]) if last else {},
            "artifacts": {k: v for r in records for k, v in r["artifacts"].items()},
            "gate": "fail" if any(r["gate"] == "fail" for r in records) else "pass",
            "gates": [g for r in records for g in r["gates"]], "notes": [], "details": {},
            "baseline": None if baseline is None else {"stage": baseline.name, **{
                k: baseline.metrics.get(k) for k in ("test_acc", "storage_bytes", "file_bytes", "density")}},
            "stages": records, "wall_s": round(wall_s, 3),
            "stage_wall_s": round(sum(r["wall_s"] for r in records), 3), "plots": []}


def standalone(method: str, run_dir: Path, settings: dict[str, Any], inputs: list[dict[str, Any]],
               metrics: dict[str, Any], artifacts: dict[str, str], details: dict[str, Any], wall_s: float,
               notes: list[str] | None = None) -> dict[str, Any]:
    """The report of a command that is not a stage of a pipeline (`lottery compare`), same contract."""
    from compress.method import Scope

    return {"schema_version": SCHEMA_VERSION, "kind": "method", "method": method, "name": method, "status": "passed",
            "run_dir": str(run_dir), "source": f"lottery {method}", "scope": Scope().to_dict(), "settings": settings,
            "inputs": inputs, "metrics": metrics, "artifacts": artifacts, "gate": "pass", "gates": [],
            "notes": list(notes or []), "details": details, "wall_s": round(wall_s, 3), "machine": machine()}


def main_artifact(rec: dict[str, Any]) -> str:
    for kind in MAIN_ARTIFACTS:
        if kind in rec.get("artifacts", {}):
            return rec["artifacts"][kind]
    return "-"


def _fmt(x: Any, kind: str) -> str:
    if x is None:
        return "-"
    if kind == "acc":
        return f"{100 * x:.2f}%"
    if kind == "bytes":
        return f"{x / 1024:.1f} KiB" if x < 1024 ** 2 else f"{x / 1024 ** 2:.2f} MiB"
    if kind == "ms":
        return f"{x:.3f} ms"
    return str(x)


def size_of(rec: dict[str, Any]) -> tuple[Any, str]:
    """A stage's size as its kind: a ticket's storage model, an artifact's bytes on disk; the label says which."""
    m = rec.get("metrics", {})
    files = {"onnx", "tflite", "plan"} & set(rec.get("artifacts", {}))
    if m.get("storage_bytes") is not None and not files and rec.get("method") not in ("bench", "deploy_edge"):
        return m["storage_bytes"], "storage"
    return (m["file_bytes"], "file") if m.get("file_bytes") is not None else (m.get("storage_bytes"), "storage")


def markdown(rep: dict[str, Any]) -> str:
    lines = [f"# Pipeline `{rep['name']}`: {rep['status'].upper()}", ""]
    if rep.get("description"):
        lines += [rep["description"], ""]
    st = rep["scope"]
    lines += [f"Model `{st['model']}` (width {st['width']}) on `{st['dataset']}`, seed {st['seed']}. "
              f"Run directory `{rep['run_dir']}`; source {rep['source']}.", ""]
    if rep.get("baseline"):
        b = rep["baseline"]
        lines += [f"Dense baseline (stage `{b['stage']}`): test accuracy {_fmt(b['test_acc'], 'acc')}, "
                  f"storage {_fmt(b['storage_bytes'], 'bytes')}.", ""]
    lines += ["| # | stage | method | status | artifact | size | accuracy | latency p50 | wall s | gate |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rep["stages"]:
        m = r["metrics"]
        status = r["status"] + (" (resumed)" if r["resumed"] else "")
        size, what = size_of(r)
        lines.append(f"| {r['index']} | {r['name']} | {r['method']} | {status} | `{main_artifact(r)}` | "
                     f"{_fmt(size, 'bytes')}{f' ({what})' if size is not None else ''} | "
                     f"{_fmt(m.get('test_acc'), 'acc')} | {_fmt(m.get('latency_ms_p50'), 'ms')} | "
                     f"{r['wall_s']:.1f} | {r['gate']} |")
    lines += ["", "## Gates and notes", ""]
    for r in rep["stages"]:
        items = [g["detail"] for g in r["gates"]] + list(r.get("notes", []))
        if r["reason"]:
            items.append(f"{r['status']}: {r['reason']}")
        if items:
            lines.append(f"- **{r['name']}**: " + "; ".join(items))
    lines += ["", "Sizes: `storage` is a ticket's storage model (kept weights at their bit width + a 1-bit mask); "
              "`file` is an artifact's bytes on disk. ONNX Runtime and PyTorch do not speed up unstructured "
              "sparsity: latency ratios near 1 are expected for sparse-but-dense-stored models."]
    for p in rep.get("plots", []):
        lines += ["", f"![{Path(p).stem}]({p})"]
    lines += ["", f"Wall time of this invocation: {rep['wall_s']:.1f} s (stages: {rep['stage_wall_s']:.1f} s "
              "when first run).", ""]
    return "\n".join(lines)


def _plots_key(rep: dict[str, Any]) -> str:
    data = [rep["name"], rep["baseline"]] + [[r["name"], r["status"], r["metrics"], r.get("details", {})]
                                             for r in rep["stages"]]
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _previous(root: Path) -> dict[str, Any]:
    try:
        old = json.loads((root / "report.json").read_text())
    except (OSError, ValueError):
        return {}
    return old if isinstance(old, dict) else {}


def write(root: Path, rep: dict[str, Any], plots: bool = True, keep_plots: bool = False) -> dict[str, Any]:
    """Write report.json (and for pipelines report.md and the plots) atomically into `root`; returns it."""
    if rep["kind"] == "pipeline":
        old = _previous(root)
        if plots:
            rep["plots_key"] = _plots_key(rep)
            if old.get("plots_key") == rep["plots_key"] and all((root / p).is_file() for p in old.get("plots", [])):
                rep["plots"] = old["plots"]  # same numbers as last time: a resumed run need not redraw
            else:
                from pipelines import plots as plotting

                rep["plots"] = [p.name for p in plotting.draw_all(root, rep)]
        elif keep_plots:
            rep.update({k: old[k] for k in ("plots", "plots_key") if k in old})
    save_json(root / "report.json", rep)
    if rep["kind"] == "pipeline":
        atomic_write_bytes(root / "report.md", markdown(rep).encode())
    return rep


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text())
