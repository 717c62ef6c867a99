"""The pipeline report: `report.json` (machine) and `report.md` (people), with plots beside them.

report.json: {pipeline, description, source, run_dir, digest, status, settings, baseline, stages: [...],
run_wall_s, stage_wall_s, plots}. Each stage: {index, name, kind, key, dir, status, gate, gates: [{gate, metric,
measured, allowed, passed, detail}], reason, resumed, wall_s, metrics, artifacts, notes, settings, allowed}.
`status` of a stage: passed | failed (a gate) | skipped (with reason) | not_run | error | interrupted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from compress.io import atomic_write_bytes, save_json
from pipelines.stages.base import StageResult

MAIN_ARTIFACTS = ("tflite", "plan", "onnx", "ticket", "model")


def build(pipe: Any, root: Path, records: list[dict[str, Any]], status: str, wall_s: float,
          baseline: StageResult | None) -> dict[str, Any]:
    s = pipe.spec.settings
    return {
        "pipeline": s.name, "description": s.description, "source": pipe.source, "run_dir": str(root),
        "digest": s.digest(), "status": status,
        "settings": {k: v for k, v in s.to_dict().items() if k not in ("name", "description")},
        "baseline": None if baseline is None else {"stage": baseline.name, **{
            k: baseline.metrics.get(k) for k in ("test_acc", "size_bytes", "density")}},
        "stages": records,
        "run_wall_s": round(wall_s, 3),
        "stage_wall_s": round(sum(r["wall_s"] for r in records), 3),
        "plots": [],
    }


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


def markdown(rep: dict[str, Any]) -> str:
    lines = [f"# Pipeline `{rep['pipeline']}`: {rep['status'].upper()}", ""]
    if rep["description"]:
        lines += [rep["description"], ""]
    st = rep["settings"]
    lines += [f"Model `{st['model']}` (width {st['width']}) on `{st['dataset']}`, seed {st['seed']}. "
              f"Run directory `{rep['run_dir']}`; source {rep['source']}.", ""]
    if rep["baseline"]:
        b = rep["baseline"]
        lines += [f"Dense baseline (stage `{b['stage']}`): test accuracy {_fmt(b['test_acc'], 'acc')}, "
                  f"size {_fmt(b['size_bytes'], 'bytes')}.", ""]
    lines += ["| # | stage | kind | status | artifact | size | accuracy | latency p50 | wall s | gate |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rep["stages"]:
        m = r["metrics"]
        status = r["status"] + (" (resumed)" if r["resumed"] else "")
        lines.append(f"| {r['index']} | {r['name']} | {r['kind']} | {status} | `{main_artifact(r)}` | "
                     f"{_fmt(m.get('size_bytes'), 'bytes')} | {_fmt(m.get('test_acc'), 'acc')} | "
                     f"{_fmt(m.get('latency_ms_p50'), 'ms')} | {r['wall_s']:.1f} | {r['gate']} |")
    lines += ["", "## Gates and notes", ""]
    for r in rep["stages"]:
        items = [g["detail"] for g in r["gates"]] + list(r.get("notes", []))
        if r["reason"]:
            items.append(f"{r['status']}: {r['reason']}")
        if items:
            lines.append(f"- **{r['name']}**: " + "; ".join(items))
    lines += ["", "Sizes of tickets are a storage model (kept weights at their bit width + a 1-bit mask); sizes of "
              "exported files are their bytes on disk. ONNX Runtime and PyTorch do not speed up unstructured "
              "sparsity: latency ratios near 1 are expected for sparse-but-dense-stored models."]
    for p in rep["plots"]:
        lines += ["", f"![{Path(p).stem}]({p})"]
    lines += ["", f"Wall time of this invocation: {rep['run_wall_s']:.1f} s (stages: {rep['stage_wall_s']:.1f} s "
              "when first run).", ""]
    return "\n".join(lines)


def _plots_key(rep: dict[str, Any]) -> str:
    data = [rep["pipeline"], rep["baseline"]] + [
        [r["name"], r["status"], r["metrics"], r.get("extra", {})] for r in rep["stages"]]
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _previous(root: Path) -> dict[str, Any]:
    try:
        old = json.loads((root / "report.json").read_text())
    except (OSError, ValueError):
        return {}
    return old if isinstance(old, dict) else {}


def write(root: Path, rep: dict[str, Any], plots: bool = True) -> dict[str, Any]:
    """Write report.json and report.md (and the plots) atomically into `root`; returns the report."""
    if plots:
        rep["plots_key"] = _plots_key(rep)
        old = _previous(root)
        if old.get("plots_key") == rep["plots_key"] and all((root / p).is_file() for p in old.get("plots", [])):
            rep["plots"] = old["plots"]  # same numbers as last time: a resumed run need not redraw
        else:
            from pipelines import plots as plotting

            rep["plots"] = [p.name for p in plotting.draw_all(root, rep)]
    save_json(root / "report.json", rep)
    atomic_write_bytes(root / "report.md", markdown(rep).encode())
    return rep
