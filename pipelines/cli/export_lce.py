"""`lottery export lce RUN_DIR`: a verified, bit-packed Larq Compute Engine `.tflite` from a binarized ticket."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from compress.ticket import resolve
from export.lce import export_lce
from pipelines.cli import options as o
from pipelines.cli.common import err_console, friendly, out_console, print_json, setup_logging
from pipelines.cli.export import app


def layers_table(r: dict) -> Table:
    t = Table(title=f"LCE export of {r['model']} ({100 * r['density']:.2f}% dense) on {r['dataset']}")
    for col in ("layer", "kind", "op", "weights", "bits/weight", "stored bits"):
        t.add_column(col, justify="right" if col in ("weights", "bits/weight", "stored bits") else "left")
    for row in r["layers"]:
        t.add_row(row["layer"], row["kind"], row["op"], f"{row['weights']:,}", f"{row['bits_per_weight']:.3g}",
                  f"{row['stored_bits']:,}")
    t.caption = (f"{r['size_bytes']:,} bytes; LCE vs PyTorch top-1 agreement {100 * r['agreement']:.2f}% of "
                 f"{r['samples']}; test acc LCE {100 * r['lce_test_acc']:.2f}% / PyTorch "
                 f"{100 * r['torch_test_acc']:.2f}%; binary layers {r['binary_bits_per_weight']:.3g} bits/weight "
                 f"(limit {r['binary_layer_bits_limit'] / max(1, r['binary_layer_weights']):.3g}). {r['note']}")
    return t


@app.command("lce")
@friendly
def lce_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Run directory, seed directory or ticket (level) directory.")],
    level: o.Level = None,
    seed: o.SeedOf = None,
    dataset: Annotated[str | None, typer.Option(help="Test set for verification (default: the ticket's).")] = None,
    min_agreement: Annotated[float, typer.Option(help="Required LCE-vs-PyTorch top-1 agreement (0..1).",
                                                 min=0.0, max=1.0)] = 0.99,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: TICKET/lce).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print export.json to stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and the final table.")] = False,
) -> None:
    """Export a binarized ticket (MPT-1/1, MPT-1/32, `lottery binarize`) to model.tflite for Larq Compute Engine.

    Binary-activation layers become bit-packed LceBconv2d ops (Linear layers as 1x1 binary convs); pruned
    binary weights are exported exactly as ternary (two binary kernels averaged, 2 bits/weight), never as +1.
    Verified before it is written: LCE interpreter vs PyTorch on the whole test set, and the ops inspected.
    """
    setup_logging(quiet or as_json)
    report = export_lce(resolve(run_dir, level, seed), out, dataset, min_agreement)
    if as_json:
        print_json(report)
    else:
        out_console.print(layers_table(report))
        err_console.print(f"model:  {report['artifact']}\nreport: {Path(report['artifact']).parent / 'export.json'}",
                          highlight=False)
