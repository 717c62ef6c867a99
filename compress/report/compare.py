"""Compare finished runs: accuracy vs density of several finders on one chart, plus `compare.json`.

Runs of the same finder (e.g. GraSP at 0.9 and at 0.95) are merged into one line; controls dashed.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from compress.errors import RunDirError
from compress.io import load_json, save_json
from compress.report.plot import accuracy_vs_density


def load_report(run: str | Path) -> dict[str, Any]:
    path = Path(run) / "report.json"
    if not path.is_file():
        raise RunDirError(f"{run} has no report.json: give run directories made by `lottery find` or "
                          "`lottery retrain` (runs/<model>-<dataset>/<method>-<key>).")
    report = load_json(path)
    details = report.get("details", {}) if isinstance(report, dict) else {}
    if not isinstance(details, dict) or "levels" not in details:
        raise RunDirError(f"{path} is not a finder's report (no levels: give runs of `lottery find`, `retrain`). "
                          "It was left untouched.")
    scope = report.get("scope", {})
    return {"finder": report.get("method", "?"), "run_dir": report.get("run_dir", str(run)),
            "levels": details["levels"], "controls": details.get("controls", []),
            "dense_test_acc": details.get("dense_test_acc"), "model": scope.get("model", "?"),
            "dataset": scope.get("dataset", "?"), "settings": report.get("settings", {})}


def compare(runs: list[str | Path], out: str | Path) -> dict[str, Any]:
    """Merge the reports of `runs` per finder; write `compare.json` and `compare.png` into `out`."""
    if not runs:
        raise RunDirError("give at least one run directory to compare.")
    reports = [load_report(r) for r in runs]
    series: dict[str, dict[str, Any]] = {}
    rows = []
    for rep in reports:
        label = rep["finder"]
        s = series.setdefault(label.strip(), {"label": label.strip(), "levels": [], "controls": rep["controls"]})
        for lv in rep["levels"]:
            if lv["level"] == 0:
                continue
            s["levels"].append(lv)
            rows.append({"finder": label.strip(), "run_dir": rep["run_dir"], "level": lv["level"],
                         "density": lv["density"], "test_acc_mean": lv["test_acc_mean"],
                         "test_acc_std": lv["test_acc_std"], "verdict": lv["verdict"],
                         **{f"{k}_test_acc_mean": lv.get(f"{k}_test_acc_mean") for k in rep["controls"]}})
    for s in series.values():
        s["levels"].sort(key=lambda r: -r["density"])
    dense = [r["dense_test_acc"] for r in reports if r.get("dense_test_acc") is not None]
    dense_acc = statistics.fmean(dense) if dense else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = sorted({r["model"] for r in reports}), sorted({r["dataset"] for r in reports})
    plot = accuracy_vs_density(list(series.values()), out / "compare.png",
                               f"{', '.join(names[0])} on {', '.join(names[1])}: accuracy vs density", dense_acc)
    result = {"runs": [str(r["run_dir"]) for r in reports], "dense_test_acc": dense_acc,
              "rows": sorted(rows, key=lambda r: (r["finder"], -r["density"])), "plot": str(plot)}
    save_json(out / "compare.json", result)
    return result
