"""`lottery export onnx RUN_DIR`: a verified ONNX file from a ticket (masks baked in, BN folded)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from compress.ticket import resolve
from export.onnx import export_onnx
from pipelines.cli.common import err_console, friendly, out_console, print_json, setup_logging
from pipelines.cli.export import app
from pipelines.cli.options import Level
from pipelines.cli.options import SeedOf as Seed


def summary_table(r: dict) -> Table:
    t = Table(title=f"ONNX export of {r['model']} ({100 * r['density']:.2f}% dense) on {r['dataset']}")
    t.add_column("check")
    t.add_column("value", justify="right")
    v = r["verification"]
    rows = [
        ("file", r["artifact"]),
        ("size (bytes)", f"{r['size_bytes']:,} ({r['size_ratio_vs_dense_storage']:.2f}x dense storage)"),
        ("sparse initializers", str(r["sparse_initializers"])),
        ("ops", ", ".join(r["ops"])),
        ("BN folded", str(len(r["bn_folding"]["folded"]))),
        ("ORT vs PyTorch top-1 agreement", f"{100 * v['agreement']:.2f}% of {v['samples']}"),
        ("max abs diff", f"{v['max_abs_diff']:.3g} (rtol {v['rtol']}, atol {v['atol']})"),
        ("test acc ORT / PyTorch", f"{100 * v['ort_test_acc']:.2f}% / {100 * v['torch_test_acc']:.2f}%"),
        ("providers", ", ".join(v["providers"])),
    ]
    for k, val in rows:
        t.add_row(k, val)
    t.caption = r["note"]
    return t


@app.command("onnx")
@friendly
def onnx_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Run directory, seed directory or ticket (level) directory.")],
    level: Level = None,
    seed: Seed = None,
    sparse_storage: Annotated[str, typer.Option(help="auto (sparse where smaller), dense or coo.")] = "auto",
    opset: Annotated[int, typer.Option(help="ONNX opset (9..20).")] = 17,
    fp16: Annotated[bool, typer.Option("--fp16", help="fp16 weights and compute (float32 input/output).")] = False,
    batch: Annotated[int | None, typer.Option(help="Static batch size (default: dynamic batch).")] = None,
    provider: Annotated[str, typer.Option(help="ORT provider for verification: cpu, cuda or tensorrt.")] = "cpu",
    dataset: Annotated[str | None, typer.Option(help="Test set for verification (default: the ticket's).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: TICKET/onnx).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print export.json to stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and the final table.")] = False,
) -> None:
    """Export a ticket to ONNX, verified against PyTorch on the whole test set before it is written.

    Pruned weights are stored as ONNX sparse initializers where that is smaller (--sparse-storage auto):
    a smaller download and file, not a faster model (ONNX Runtime densifies them at load).
    """
    setup_logging(quiet or as_json)
    report = export_onnx(resolve(run_dir, level, seed), out, opset, sparse_storage, fp16, batch, provider, dataset)
    if as_json:
        print_json(report)
    else:
        out_console.print(summary_table(report))
        err_console.print(f"report: {Path(report['artifact']).parent / 'export.json'}", highlight=False)
