"""`lottery find METHOD`: search for lottery tickets and print the per-level table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from compress import finders
from pipelines.cli import options as o
from pipelines.cli.common import err_console, friendly, out_console, print_json, setup_logging
from pipelines.cli.tables import levels_table

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Find lottery tickets. Each method writes a run directory with report.json and a plot.",
    no_args_is_help=True,
)


def run_finder(name: str, seeds: int, first_seed: int, out: Path, as_json: bool, quiet: bool,
               flags: dict[str, Any]) -> dict:
    """Shared body of every `lottery find` command: build hparams, run, print."""
    setup_logging(quiet or as_json)
    hp = finders.make_hparams(name, o.settings(**flags))
    report = finders.find(name, hp, list(range(first_seed, first_seed + seeds)), out)
    if as_json:
        print_json(report)
    else:
        out_console.print(levels_table(report))
        err_console.print(f"report: {Path(report['run_dir']) / 'report.json'}\n"
                          f"plot:   {Path(report['run_dir']) / 'accuracy_vs_density.png'}", highlight=False)
    return report


@app.command("imp")
@friendly
def imp(
    model: o.Model = "lenet_300_100",
    dataset: o.DatasetOpt = "mnist5k",
    rounds: Annotated[int | None, typer.Option(help="Pruning rounds after the dense run (default 12).")] = None,
    rate: Annotated[float | None, typer.Option(help="Fraction of remaining weights pruned per round (0,1).")] = None,
    rewind: Annotated[str | None, typer.Option(help="init (LTH), iter (late rewind to --rewind-iter), lr.")] = None,
    rewind_iter: Annotated[int | None, typer.Option(help="Iteration to rewind to with --rewind iter.")] = None,
    output_rate_factor: Annotated[float | None, typer.Option(help="Output layer rate = rate x this (0.5).")] = None,
    selection: o.Selection = None,
    layer_rate: o.LayerRate = None,
    exclude: o.Exclude = None,
    allow_collapse: o.AllowCollapse = False,
    nm_policy: o.NmPolicy = None,
    seeds: o.Seeds = 1,
    first_seed: o.FirstSeed = 0,
    out: o.Out = Path("runs"),
    width: o.Width = None,
    init: o.Init = None,
    data_root: o.DataRoot = None,
    download: o.Download = False,
    optimizer: o.Optimizer = None,
    lr: o.Lr = None,
    batch_size: o.BatchSize = None,
    epochs: o.Epochs = None,
    iterations: o.Iterations = None,
    schedule: o.Schedule = None,
    weight_decay: o.WeightDecay = None,
    controls: o.Controls = None,
    tolerance: o.Tolerance = None,
    margin: o.Margin = None,
    set_: o.Set = None,
    as_json: o.Json = False,
    quiet: o.Quiet = False,
) -> None:
    """Iterative Magnitude Pruning with rewinding (Frankle & Carbin, 2019), with sanity-check controls.

    Trains the dense net, then repeatedly prunes RATE of the remaining weights by magnitude, rewinds and
    retrains. At every level the same mask with a new init (reinit) and a random mask of the same
    per-layer density (random) are trained as controls; a level is 'winning' only if it beats both.
    Re-running the same command resumes: finished levels are skipped. With an N:M --selection (2:4) the
    N:M ticket is level 1 and the search stops there (the pattern fixes the density).
    """
    run_finder("imp", seeds, first_seed, out, as_json, quiet, dict(
        model=model, dataset=dataset, rounds=rounds, rate=rate, rewind=rewind, rewind_iter=rewind_iter,
        selection=selection, layer_rate=layer_rate, exclude=exclude, allow_collapse=allow_collapse,
        nm_policy=nm_policy, width=width, init=init, data_root=data_root, download=download, optimizer=optimizer, lr=lr,
        batch_size=batch_size, epochs=epochs, iterations=iterations, schedule=schedule, weight_decay=weight_decay,
        controls=controls, tolerance=tolerance, margin=margin, set=set_,
        **({"prune.output_rate_factor": output_rate_factor} if output_rate_factor is not None else {}),
    ))
