"""Aggregate a finder's run directory (all seeds, all levels) into `report.json`'s content.

Verdicts (per level above 0), checked in this order:
- `diverged`: some seed's weights hold NaN/inf (counted when the ticket was written) or its test loss is
  not finite: its accuracy is an artefact (NaN logits all pick class 0), never a result;
- `at-chance`: mean test accuracy within `CHANCE_MARGIN` (or the control margin, if larger) of chance:
  the majority-class rate when the metrics record it (`chance_acc`), else 1 / classes;
- `winning`: ticket mean >= dense mean - tolerance AND ticket mean >= each control's mean + margin;
- `matches-dense`: within tolerance of dense but not ahead of every control (not a winning ticket);
- `below-dense`: more than `tolerance` below the dense network.
Level 0 is `dense`, or `diverged` / `at-chance` when the dense network itself is.
Only `winning` and `matches-dense` levels are ever selected.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from compress.finders.controls import control_path
from compress.io import load_json
from compress.settings import ControlHparams
from compress.ticket import METRICS_FILE, TICKET_FILE, _index

CHANCE_MARGIN = 0.02  # fraction of the test set: 2 points above chance still means "learned nothing"


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def _std(xs: list[float]) -> float:
    return statistics.pstdev(xs) if len(xs) > 1 else 0.0


def collect(run: Path, controls: ControlHparams) -> dict[str, Any]:
    """Read every finished level of every seed; return dense accuracy, levels and the selected level."""
    per_level: dict[int, list[dict]] = {}
    seeds = sorted(_index(s, "seed") for s in run.glob("seed-*") if s.is_dir())
    for seed in seeds:
        for ld in sorted(run.glob(f"seed-{seed}/level-*"), key=lambda p: _index(p, "level")):
            if not (ld / TICKET_FILE).is_file():
                continue
            info = load_json(ld / TICKET_FILE)
            metrics = load_json(ld / METRICS_FILE) if (ld / METRICS_FILE).is_file() else info.get("meta", {}).get(
                "metrics", {})
            if "test_acc" not in metrics:
                continue  # an untrained ticket (e.g. pruning at init without training) has no accuracy yet
            info.setdefault("meta", {})["metrics"] = metrics
            entry = {"seed": seed, "density": info["density"], **metrics,
                     "diverged": _diverged(info), "chance": _chance(info)}
            for kind in controls.controls:
                if control_path(ld, kind).is_file():
                    entry[kind] = load_json(control_path(ld, kind))["test_acc"]
            per_level.setdefault(_index(ld, "level"), []).append(entry)

    dense = [e["test_acc"] for e in per_level.get(0, [])]
    dense_mean = _mean(dense)
    levels = []
    for level in sorted(per_level):
        entries = per_level[level]
        accs = [math.nan if e["test_acc"] is None else e["test_acc"] for e in entries]  # strict JSON: NaN -> null
        row: dict[str, Any] = {
            "level": level,
            "density": _mean([e["density"] for e in entries]),
            "test_acc_mean": _mean(accs),
            "test_acc_std": _std(accs),
            "test_acc_per_seed": accs,
            "early_stop_iter": _mean([e["early_stop_iter"] for e in entries]),
            "wall_s": round(sum(e.get("wall_s", 0.0) for e in entries), 2),
            "seeds": [e["seed"] for e in entries],
            "chance_acc": max(e["chance"] for e in entries),
            "diverged_seeds": [e["seed"] for e in entries if e["diverged"]],
        }
        for kind in controls.controls:
            vals = [e[kind] for e in entries if kind in e]
            row[f"{kind}_test_acc_mean"] = _mean(vals)
            row[f"{kind}_test_acc_per_seed"] = vals
        row["verdict"] = verdict(row, dense_mean, controls) if level else (_broken(row, controls) or "dense")
        levels.append(row)
    selected = select_level(levels, dense_mean, controls)
    return {"dense_test_acc": dense_mean, "levels": levels, "selected_level": selected}


def _diverged(info: dict[str, Any]) -> bool:
    """Non-finite weights (as counted by Ticket.save) or a non-finite test loss (older tickets)."""
    files = info.get("files") if isinstance(info.get("files"), dict) else {}
    if any(isinstance(r, dict) and r.get("nonfinite") for r in files.values()):
        return True
    metrics = info["meta"]["metrics"]
    if "test_loss" not in metrics:
        return False
    loss = metrics["test_loss"]  # strict JSON writes NaN as null
    return loss is None or not math.isfinite(float(loss))


def _chance(info: dict[str, Any]) -> float:
    recorded = info["meta"]["metrics"].get("chance_acc")
    if isinstance(recorded, (int, float)) and math.isfinite(recorded):
        return float(recorded)
    classes = info.get("spec", {}).get("num_classes")
    return 1.0 / classes if isinstance(classes, int) and classes > 0 else 0.0


def _broken(row: dict[str, Any], c: ControlHparams) -> str | None:
    """`diverged` or `at-chance` when the level's numbers mean nothing, else None."""
    acc = row["test_acc_mean"]
    if row.get("diverged_seeds") or acc is None or not math.isfinite(acc):
        return "diverged"
    if acc <= row.get("chance_acc", 0.0) + max(CHANCE_MARGIN, c.margin):
        return "at-chance"
    return None


def verdict(row: dict[str, Any], dense_mean: float | None, c: ControlHparams) -> str:
    acc = row["test_acc_mean"]
    if dense_mean is None or acc is None:
        return "incomplete"
    broken = _broken(row, c)
    if broken:
        return broken
    if acc < dense_mean - c.tolerance:
        return "below-dense"
    for kind in c.controls:
        other = row.get(f"{kind}_test_acc_mean")
        if other is None:
            return "incomplete"
        if acc < other + c.margin:
            return "matches-dense"
    return "winning"


def select_level(levels: list[dict], dense_mean: float | None, c: ControlHparams) -> int:
    """The sparsest winning level; else the sparsest level within tolerance of dense; else the dense level."""
    for wanted in ("winning", "matches-dense"):
        hits = [r for r in levels if r["verdict"] == wanted]
        if hits:
            return min(hits, key=lambda r: r["density"])["level"]
    return 0
