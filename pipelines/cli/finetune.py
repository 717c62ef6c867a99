"""`lottery finetune RUN_DIR`: train untrained tickets, or prune a trained model one-shot (--selection 2:4)
and retrain it (NVIDIA ASP's recipe)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from compress import finetune as ft
from pipelines.cli import options as o
from pipelines.cli.common import err_console, friendly, out_console, print_json, setup_logging
from pipelines.cli.tables import levels_table


def register(app: typer.Typer) -> None:
    @app.command("finetune")
    @friendly
    def finetune(
        run_dir: Annotated[Path, typer.Argument(help="A run directory (all its seeds) or one ticket directory.")],
        selection: Annotated[str | None, typer.Option(
            help="Prune the trained model one-shot with this selection (2:4, global, layerwise, erk) and "
                 "retrain; without it, train the source tickets as they are.")] = None,
        sparsity: Annotated[float, typer.Option(help="Fraction removed by a non-N:M selection.")] = 0.5,
        level: Annotated[int, typer.Option(help="Source level (default: 0 when pruning, else the last).")] = -1,
        exclude: o.Exclude = None,
        allow_collapse: o.AllowCollapse = False,
        nm_policy: o.NmPolicy = None,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Root folder (default: the source's).")] = None,
        optimizer: o.Optimizer = None,
        lr: o.Lr = None,
        batch_size: o.BatchSize = None,
        epochs: o.Epochs = None,
        iterations: o.Iterations = None,
        schedule: o.Schedule = None,
        weight_decay: o.WeightDecay = None,
        controls: o.Controls = None,
        set_: o.Set = None,
        as_json: o.Json = False,
        quiet: o.Quiet = False,
    ) -> None:
        """Train a ticket (e.g. from `lottery find grasp --no-finetune`) or prune-and-retrain a trained model.

        Training settings default to the source run's. Writes <out>/<model>-<dataset>/finetune-<digest>/ with
        level-0 (dense reference), level-1 (the finetuned ticket) and the sanity-check controls, and the same
        report.json, table and plot as `lottery find`.
        """
        setup_logging(quiet or as_json)
        settings = o.settings(exclude=exclude, allow_collapse=allow_collapse, nm_policy=nm_policy,
                              optimizer=optimizer, lr=lr, batch_size=batch_size, epochs=epochs,
                              iterations=iterations, schedule=schedule, weight_decay=weight_decay,
                              controls=controls, set=set_)
        hp = ft.make_hparams(run_dir, selection or "", sparsity, level, settings)
        report = ft.finetune(hp, out)
        if as_json:
            print_json(report)
        else:
            out_console.print(levels_table(report))
            err_console.print(f"report: {Path(report['run_dir']) / 'report.json'}", highlight=False)
