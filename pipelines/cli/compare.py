"""`lottery compare RUN_DIR...`: accuracy vs density of several runs on one chart, and compare.json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipelines.cli.common import err_console, friendly, out_console, pct, print_json


def register(app: typer.Typer) -> None:
    @app.command("compare")
    @friendly
    def compare(
        runs: Annotated[list[Path], typer.Argument(help="Run directories (with report.json) to compare.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Folder for compare.json and compare.png.")] = Path("."),
        as_json: Annotated[bool, typer.Option("--json", help="Print compare.json to stdout.")] = False,
    ) -> None:
        """Plot accuracy vs density for several runs (one line per finder, controls dashed); write compare.json."""
        import time

        from compress.io import save_json
        from compress.report.compare import compare as compare_runs
        from pipelines.artifacts import content_sha256
        from pipelines.report import standalone

        start = time.perf_counter()
        result = compare_runs(list(runs), out)
        inputs = [{"kind": "run", "path": str(Path(r).resolve()), "sha256": content_sha256(Path(r) / "report.json")}
                  for r in runs]
        save_json(Path(out) / "report.json", standalone(
            "compare", Path(out).resolve(), {"runs": [str(r) for r in runs]}, inputs,
            {"runs": len(runs), "dense_test_acc": result["dense_test_acc"]},
            {"compare": "compare.json", "plot": Path(result["plot"]).name}, {"rows": result["rows"]},
            time.perf_counter() - start))
        if as_json:
            print_json(result)
            return
        controls = sorted({k[: -len("_test_acc_mean")] for r in result["rows"] for k in r
                           if k.endswith("_test_acc_mean") and k != "test_acc_mean"})
        t = Table(title=f"accuracy vs density (test accuracy %; dense {pct(result['dense_test_acc'])})")
        for col in ("finder", "density %", "ticket", *controls, "verdict"):
            t.add_column(col, justify="left" if col in ("finder", "verdict") else "right")
        for r in result["rows"]:
            t.add_row(r["finder"], f"{100 * r['density']:.2f}", f"{pct(r['test_acc_mean'])} ± {pct(r['test_acc_std'])}",
                      *[pct(r.get(f"{k}_test_acc_mean")) for k in controls], r["verdict"])
        out_console.print(t)
        err_console.print(f"compare.json: {Path(out) / 'compare.json'}\nplot: {result['plot']}", highlight=False)
