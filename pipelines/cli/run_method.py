"""The body every generated method command shares: build the one-stage pipeline, run it, print, exit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from compress.errors import UsageError
from compress.method import Method
from pipelines import artifacts as arts
from pipelines.cli.common import err_console, out_console, pct, print_json, setup_logging


def input_scope(kind: str, path: Path) -> dict[str, Any]:
    """The scope an input was made in: a ticket's architecture and dataset, an artifact's recorded scope."""
    from compress.io import load_json

    if path.is_dir():
        info = load_json(path / "ticket.json")
        spec, meta = info.get("spec", {}), info.get("meta", {})
        out = {"model": spec.get("name"), "width": spec.get("width"), "init": spec.get("init"),
               "dataset": meta.get("dataset"), "seed": meta.get("seed")}
        return {k: v for k, v in out.items() if v is not None}
    for folder in list(path.resolve().parents)[:4]:
        result = folder / arts.RESULT
        if result.is_file():
            data = load_json(result)
            if isinstance(data, dict) and isinstance(data.get("scope"), dict):
                return {k: v for k, v in data["scope"].items() if k in ("model", "width", "init", "dataset", "seed")}
    return {}


def run_method(m: Method, scope: dict[str, Any], settings: dict[str, Any], gates: list[str], input_path: Path | None,
               level: int | None, out: Path | None, as_json: bool, quiet: bool, debug: bool) -> dict[str, Any]:
    from pipelines.runner import Pipeline

    setup_logging(quiet or as_json)
    stage: dict[str, Any] = {"kind": m.name, **settings}
    gate_tree: dict[str, Any] = {}
    for item in gates:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--gate needs NAME=VALUE (e.g. min_acc=0.9), got '{item}'.")
        from pipelines.spec import parse_value

        gate_tree[name.strip()] = parse_value(value.strip())
    if gate_tree:
        stage["gate"] = gate_tree
    pipeline = dict(scope)
    if m.needs:
        assert input_path is not None
        kind, path = arts.resolve_input(input_path, m.needs[0], level=level, seed=scope.get("seed"))
        pipeline = {**input_scope(kind, path), **scope}
        stage["input"] = str(path)
        out = out if out is not None else (path if path.is_dir() else path.parent)
    pipeline["name"] = m.name
    pipe = Pipeline({"pipeline": pipeline, "stages": [stage]}, f"lottery {' '.join(m.command)}", single=True)
    from pipelines.progress import progress_for

    with progress_for(quiet or as_json) as progress:
        rep = pipe.run(out if out is not None else Path("runs"), progress=progress)
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
    from pipelines.cli.tables import levels_table

    details = rep.get("details", {})
    if details.get("levels"):
        out_console.print(levels_table(rep))
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
