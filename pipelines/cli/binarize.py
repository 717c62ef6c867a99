"""`lottery binarize RUN_DIR`: turn a ticket or trained model into a binary network and finetune it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipelines.cli.common import err_console, friendly, out_console, pct, print_json, setup_logging
from pipelines.cli.find_mpt import layers_table


def summary_table(report: dict) -> Table:
    """larq-style per-layer summary: precision, params, kept, stored bits."""
    title = (f"binarized {report['model']} on {report['dataset']}: test acc {pct(report['test_acc'])}% "
             f"(source {pct(report['source_test_acc'])}%, before finetune "
             f"{pct(report['before_finetune_test_acc'])}%)")
    t = layers_table(report["layers"], title)
    t.caption = (f"{report['size_bytes']} bytes stored vs {report['float32_size_bytes']} bytes float32 "
                 f"({report['compression']:.1f}x)" + ("; ternary: pruned weights are exact zeros, {-a, 0, +a}"
                                                      if report["ternary"] else ""))
    return t


def register(app: typer.Typer) -> None:
    @app.command("binarize")
    @friendly
    def binarize(
        run_dir: Annotated[Path, typer.Argument(help="A ticket, seed or run directory (IMP, GraSP, dense...).")],
        act: Annotated[str, typer.Option(help="float, or binary (sign activations on layer inputs).")] = "float",
        scale: Annotated[str, typer.Option(help="Weight scale: channel (XNOR-Net), layer or none.")] = "channel",
        layers: Annotated[str, typer.Option(help="inner (first/last stay float), all, or NAME,NAME...")] = "inner",
        level: Annotated[int | None, typer.Option(help="Level to binarize (default: the report's pick).")] = None,
        epochs: Annotated[float, typer.Option(help="Finetuning epochs (straight-through estimator).")] = 5.0,
        lr: Annotated[float, typer.Option(help="Finetuning learning rate (Adam, cosine).")] = 1e-3,
        dataset: Annotated[str, typer.Option(help="Dataset (default: the ticket's own).")] = "",
        out: Annotated[Path | None, typer.Option(help="Output folder (default TICKET/binarize-<digest>).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print report.json to stdout.")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and the table.")] = False,
    ) -> None:
        """Binarize a ticket (sign weights x per-channel scale; pruned weights stay 0) and finetune it."""
        from compress.binarize.finetune import BinarizeHparams, run
        from compress.train import TrainHparams

        setup_logging(quiet or as_json)
        train = BinarizeHparams().train.replace(epochs=epochs, lr=lr)
        assert isinstance(train, TrainHparams)
        hp = BinarizeHparams(act=act, scale=scale, layers=layers, train=train, dataset=dataset)
        report = run(run_dir, hp, out=out, level=level)
        if as_json:
            print_json(report)
        else:
            out_console.print(summary_table(report))
            err_console.print(f"ticket: {report['ticket_dir']}", highlight=False)
