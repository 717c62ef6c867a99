"""`lottery run [PIPELINE]` and `lottery presets`: end-to-end pipelines with gates, resume and a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from pipelines.cli.commands import parallel_options, show
from pipelines.cli.common import err_console, friendly, out_console, pct, print_json, setup_logging

PARALLEL = {name: option for name, _, option in parallel_options()}
STATUS_STYLE = {"passed": "green", "failed": "bold red", "skipped": "yellow", "not_run": "dim", "error": "red"}


def stages_table(rep: dict[str, Any]) -> Table:
    from pipelines.report import size_of

    resumed = any(r["resumed"] for r in rep["stages"])
    t = Table(title=f"pipeline {rep['name']}: {rep['status']}",
              caption="r = resumed (finished earlier)" if resumed else None)
    for col in ("#", "stage", "status", "size KiB", "acc %", "p50 ms", "wall s", "gate"):
        t.add_column(col, justify="right" if col in ("#", "size KiB", "acc %", "p50 ms", "wall s") else "left",
                     no_wrap=col != "stage")
    for r in rep["stages"]:
        m = r["metrics"]
        size, _ = size_of(r)
        lat = m.get("latency_ms_p50")
        style = STATUS_STYLE.get(r["status"], "")
        status = r["status"] + (" r" if r["resumed"] else "")
        t.add_row(str(r["index"]), escape(r["name"]), f"[{style}]{status}[/]" if style else status,
                  "-" if size is None else f"{size / 1024:.1f}", pct(m.get("test_acc")),
                  "-" if lat is None else f"{lat:.3f}", f"{r['wall_s']:.1f}", r["gate"])
    return t


def plan_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="plan (nothing was run)")
    for col in ("#", "stage", "kind", "key", "state", "gates", "settings"):
        t.add_column(col)
    for r in rows:
        state = r["state"] + (f": {r['reason']}" if r["reason"] else "")
        gates = ", ".join(f"{k}={v:g}" for k, v in r["gates"].items()) or "-"
        settings = json.dumps(r["settings"], separators=(",", ":"))[1:-1] or "defaults"
        t.add_row(str(r["index"]), r["name"], r["kind"], r["key"], escape(state), gates, escape(settings))
    return t


def register(app: typer.Typer) -> None:
    @app.command("run")
    @friendly
    def run(
        pipeline: Annotated[str | None, typer.Argument(
            help="A preset name (see `lottery presets`) or a pipeline .toml file. Default: quickstart.")] = None,
        set_: Annotated[list[str] | None, typer.Option(
            "--set", help="Override a setting: STAGE.KEY=VALUE, pipeline.KEY=VALUE, STAGE.gate.NAME=VALUE.")] = None,
        out: Annotated[Path, typer.Option("--out", "-o", help="Root folder for run directories.")] = Path("runs"),
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (keys, done/run/skip) only.")] = False,
        keep_going: Annotated[bool, typer.Option(help="Record failed gates and continue with later stages.")] = False,
        require_all: Annotated[bool, typer.Option(
            help="Fail (exit 2) instead of skipping stages whose hardware is absent (e.g. GPU stages).")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress; only the final table.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print report.json (or the plan) to stdout.")] = False,
        debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")] = False,
        trust_code: Annotated[bool, typer.Option("--trust-code", help=(
            "Allow importing module:factory models named inside an input's run directory (runs their code)."))]
        = False,
        nproc: int | None = PARALLEL["nproc"],
        nnodes: int | None = PARALLEL["nnodes"],
        rdzv_endpoint: str | None = PARALLEL["rdzv_endpoint"],
    ) -> None:
        """Run a pipeline end to end: stages chained with accuracy/latency/size gates.

        Finished stages are skipped when run again (after Ctrl-C or a crash too); changing one stage's
        setting reruns that stage and the later ones. Writes report.json, report.md and plots into
        OUT/pipelines/NAME-DIGEST/. Exit code 1 when a gate fails, 2 for bad input.
        """
        from pipelines.cli import launch
        from pipelines.progress import progress_for
        from pipelines.runner import Pipeline, failed_summary

        if not dry_run and launch.requested(nproc, nnodes, rdzv_endpoint):
            raise typer.Exit(launch.relaunch(nproc, nnodes, rdzv_endpoint))
        setup_logging(quiet or as_json)
        pipe = Pipeline.load(pipeline).with_settings(set_)
        if dry_run:
            rows = pipe.plan(out, trust_code)
            previous = pipe.previous(out)
            if as_json:
                print_json({"pipeline": pipe.spec.name, "run_dir": str(pipe.root(out)), "previous": previous,
                            "stages": rows})
            else:
                out_console.print(plan_table(rows))
                err_console.print(f"{escape(str(pipe.root(out)))}: {escape(previous)}", highlight=False)
            return
        with progress_for(quiet or as_json) as progress:
            rep = pipe.run(out, keep_going=keep_going, require_all=require_all, progress=progress,
                           trust_code=trust_code)
        root = Path(rep["run_dir"])
        if as_json:
            print_json(rep)
        else:
            out_console.print(stages_table(rep))
            err_console.print(f"report: {root / 'report.md'}\n        {root / 'report.json'}", highlight=False)
        if rep["status"] == "failed":
            err_console.print(f"[bold red]{escape(failed_summary(rep))}[/]", highlight=False, soft_wrap=True)
            raise typer.Exit(1)

    @app.command("presets")
    def list_presets(
        stages: Annotated[bool, typer.Option("--stages", help="List stage kinds, their metrics and gates.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    ) -> None:
        """List the shipped pipelines (`lottery run NAME`), or with --stages the stage kinds a spec may use."""
        from pipelines import gates, presets, registry

        if stages:
            items = {m.name: {"description": m.summary, "command": " ".join(m.command), "needs": list(m.needs),
                              "produces": list(m.produces), "metrics": list(m.metrics),
                              "gates": gates.valid_for(m.metrics), "default_gates": m.default_gates(m.settings()),
                              "settings": {d: default for d, _, default, _ in m.settings.leaves()}}
                     for m in registry.all_methods()}
            if as_json:
                print_json(items)
                return
            t = Table(title="stage kinds (methods) and their settings' defaults")
            for col in ("kind", "description", "needs", "settings (defaults)", "gates (default)"):
                t.add_column(col)
            for k, v in items.items():
                defaults = ", ".join(f"{d}={show(x)}" for d, x in v["settings"].items())
                valid = ", ".join(f"{g}={v['default_gates'][g]:g}" if g in v["default_gates"] else g
                                  for g in v["gates"])
                t.add_row(k, escape(v["description"]), ", ".join(v["needs"]) or "-", escape(defaults) or "-",
                          escape(valid) or "-")
            out_console.print(t)
            return
        items = presets.names()
        if as_json:
            print_json(items)
            return
        t = Table(title=f"presets (default: {presets.DEFAULT})")
        t.add_column("name", style="bold")
        t.add_column("description")
        for k, v in items.items():
            t.add_row(k, v)
        out_console.print(t)
