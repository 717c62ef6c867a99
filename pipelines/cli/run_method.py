"""The body every generated method command shares: build the one-stage pipeline, run it, print, exit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from compress.errors import UsageError
from compress.method import Method
from pipelines.cli.common import err_console, out_console, pct, print_json, setup_logging


def run_method(m: Method, scope: dict[str, Any], settings: dict[str, Any], gates: list[str], input_path: Path | None,
               level: int | None, out: Path | None, as_json: bool, quiet: bool, trust_code: bool) -> dict[str, Any]:
    from pipelines import api
    from pipelines.progress import progress_for
    from pipelines.spec import parse_value

    setup_logging(quiet or as_json)
    gate_tree: dict[str, Any] = {}
    for item in gates:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--gate needs NAME=VALUE (e.g. min_acc=0.9), got '{item}'.")
        gate_tree[name.strip()] = parse_value(value.strip())
    with progress_for(quiet or as_json) as progress:
        rep = api.run(m.name, input=input_path, out=out, scope=scope, gates=gate_tree, level=level,
                      settings=settings, progress=progress, trust_code=trust_code)
    if as_json:
        print_json(rep)
    else:
        print_report(rep)
    if rep["status"] == "failed":
        from pipelines.runner import failed_summary

        err_console.print(f"[bold red]{escape(failed_summary(rep))}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    return rep


def print_report(rep: dict[str, Any]) -> None:
    from pipelines.cli.tables import layers_table, levels_table

    details = rep.get("details", {})
    if details.get("levels"):
        out_console.print(levels_table(rep))
    if details.get("layers") and isinstance(details["layers"], list) and "weight_bits" in details["layers"][0]:
        out_console.print(layers_table(details["layers"], f"{rep['method']}: stored bits per layer"))
    t = Table(title=f"{rep['method']}: {rep['status']}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in rep["metrics"].items():
        if isinstance(v, float):
            v = pct(v) + " %" if k.endswith(("_acc", "agreement")) else f"{v:.6g}"
        t.add_row(k, escape(str(v)))
    for g in rep["gates"]:
        t.add_row(f"gate {g['gate']}", ("pass" if g["passed"] else "[bold red]FAIL[/]") + f" ({escape(g['detail'])})")
    out_console.print(t)
    for note in rep.get("notes", []):
        err_console.print(f"note: {escape(note)}", highlight=False)
    run_dir = Path(rep["run_dir"])
    err_console.print(f"report: {escape(str(run_dir / 'report.json'))}", highlight=False)
    for kind, p in rep.get("artifacts", {}).items():
        if kind != "predictions":
            err_console.print(f"{kind}: {escape(str(run_dir / p))}", highlight=False)
