"""Rich tables for reports printed by the CLI."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from pipelines.cli.common import pct

VERDICT_STYLE = {"winning": "bold green", "matches-dense": "yellow", "below-dense": "red", "dense": "dim"}


def levels_table(rep: dict[str, Any]) -> Table:
    """The per-level table of a finder's report (details.levels), with the controls and verdicts."""
    report = rep["details"]
    sc = rep["scope"]
    t = Table(title=f"{rep['method']}: {sc['model']} on {sc['dataset']} "
                    f"(seeds {', '.join(map(str, report['seeds']))}; test accuracy %)")
    t.add_column("level", justify="right")
    t.add_column("density %", justify="right")
    t.add_column("ticket", justify="right")
    for kind in report["controls"]:
        t.add_column(kind, justify="right")
    t.add_column("early stop it", justify="right")
    t.add_column("verdict")
    for r in report["levels"]:
        ticket = f"{pct(r['test_acc_mean'])} ± {pct(r['test_acc_std'])}"
        controls = [pct(r.get(f"{k}_test_acc_mean")) for k in report["controls"]]
        style = VERDICT_STYLE.get(r["verdict"], "")
        mark = " *" if r["level"] == report.get("selected_level") else ""
        t.add_row(str(r["level"]), f"{100 * r['density']:.2f}", ticket, *controls, f"{r['early_stop_iter']:.0f}",
                  f"[{style}]{r['verdict']}[/]{mark}" if style else r["verdict"] + mark)
    t.caption = (f"winning = within {pct(report['tolerance'], 1)} pt of dense and ≥ {pct(report['margin'], 1)} pt "
                 "above every control; * = selected level")
    return t


def layers_table(rows: list[dict], title: str) -> Table:
    """larq-style per-layer summary: precision of weights/activations, params, kept, stored bits."""
    t = Table(title=title)
    for col in ("layer", "kind", "weights", "activations", "params", "kept", "bits"):
        t.add_column(col, justify="left" if col in ("layer", "kind") else "right")
    for r in rows:
        if "weight_bits" not in r:
            continue
        t.add_row(r["layer"], r["kind"], f"{r['weight_bits']}-bit", f"{r['act_bits']}-bit", str(r["params"]),
                  str(r["kept"]), str(r["bits"]))
    return t
