"""`lottery export tensorrt RUN_DIR`: 2:4 report, build_engine.sh, and TensorRT engines where a GPU is."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from compress.ticket import resolve
from pipelines.cli.common import friendly, out_console, print_json, setup_logging
from pipelines.cli.export import app
from pipelines.cli.options import Level
from pipelines.cli.options import SeedOf as Seed
from pipelines.tensorrt_export import export_tensorrt


def nm_table(rows: list[dict]) -> Table:
    t = Table(title="2:4 compliance per layer (weights as TensorRT sees them)")
    for col in ("layer", "weight", "shape (out, in, ...)", "density %", "2:4", "why not"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["layer"], r["weight"], str(tuple(r.get("shape", ()))), f"{100 * r.get('density', 0):.1f}",
                  "yes" if r["compliant"] else "no", r.get("reason", ""))
    return t


@app.command("tensorrt")
@friendly
def tensorrt_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Run directory, seed directory or ticket (level) directory.")],
    level: Level = None,
    seed: Seed = None,
    sparsity: Annotated[str, typer.Option(help="enable, disable, or force (every layer must be 2:4).")] = "enable",
    allow_dense_fallback: Annotated[bool, typer.Option(help="With --sparsity force: let non-2:4 layers run dense."
                                                       )] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="Let TensorRT use FP16 kernels.")] = False,
    int8_calib: Annotated[int, typer.Option(help="INT8 with N training samples for calibration (0 = off).")] = 0,
    batch: Annotated[int | None, typer.Option(help="Static batch size (default: dynamic, profile 1/64/256).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: TICKET/tensorrt).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print tensorrt.json to stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and the final table.")] = False,
) -> None:
    """Build a TensorRT engine with 2:4 sparse kernels (BuilderFlag.SPARSE_WEIGHTS) from the verified ONNX.

    Writes the ONNX, a per-layer 2:4 report and build_engine.sh (the equivalent trtexec line) first; without
    TensorRT or a CUDA GPU it stops there with exit code 2. With them: engines with sparsity on and off,
    parity against ONNX Runtime, latency of both, and the layers TensorRT actually ran sparse.
    """
    setup_logging(quiet or as_json)
    report = export_tensorrt(resolve(run_dir, level, seed), out, sparsity, fp16, int8_calib, allow_dense_fallback,
                             batch)
    if as_json:
        print_json(report)
        return
    out_console.print(nm_table(report["nm_report"]))
    for kind, e in report.get("engines", {}).items():
        lat = e["latency"]["batch"]
        out_console.print(f"{kind}: {e['engine']} test acc {100 * e['test_acc']:.2f}%, p50 "
                          + ", ".join(f"b{b} {v['latency_ms_p50']:.3f} ms" for b, v in lat.items()))
    sparse = ", ".join(report.get("sparse_layers", [])) or "none"
    out_console.print(f"layers TensorRT ran with sparse kernels: {sparse}")
