"""`lottery find grasp|snip|synflow|random`: pruning at initialization, one command per scorer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from compress.finders.pai import METHODS
from pipelines.cli import options as o
from pipelines.cli.common import friendly
from pipelines.cli.find import app, run_finder

Sparsity = Annotated[float | None, typer.Option(help="Fraction of prunable weights removed, in [0, 1) (0.9).")]
Finetune = Annotated[bool, typer.Option(help="Train the ticket, the dense baseline and the controls now "
                                             "(--no-finetune: save the untrained ticket; `lottery finetune` later).")]
ScoreBatches = Annotated[int | None, typer.Option(help="GraSP/SNIP: training batches scored (1).")]
ScoreBatchSize = Annotated[int | None, typer.Option(help="GraSP/SNIP: samples per scored batch (100).")]
Iterations = Annotated[int | None, typer.Option("--synflow-iterations", help="SynFlow: prune-rescore steps (100).")]
Temperature = Annotated[float | None, typer.Option(help="GraSP: softmax temperature (200, the paper's code).")]
ReinitLinear = Annotated[bool, typer.Option(help="GraSP: score a copy whose fully connected weights are redrawn "
                                                 "Xavier-normal, as the official code does (--no-grasp-reinit-linear: "
                                                 "score the network's own fc weights).")]


def _command(method: str) -> None:
    @app.command(method, help=f"{METHODS[method]}.\n\nScores the initialized network, selects the mask (global "
                 "top-k by default), saves the ticket and trains it with the dense baseline and the sanity-check "
                 "controls (reinit, random mask); verdicts as for IMP. Re-running resumes.")
    @friendly
    def find_pai(
        model: o.Model = "lenet_300_100",
        dataset: o.DatasetOpt = "mnist5k",
        sparsity: Sparsity = None,
        selection: o.Selection = None,
        exclude: o.Exclude = None,
        layer_rate: o.LayerRate = None,
        allow_collapse: o.AllowCollapse = False,
        nm_policy: o.NmPolicy = None,
        finetune: Finetune = True,
        score_batches: ScoreBatches = None,
        score_batch_size: ScoreBatchSize = None,
        synflow_iterations: Iterations = None,
        grasp_temperature: Temperature = None,
        grasp_reinit_linear: ReinitLinear = True,
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
        run_finder(method, seeds, first_seed, out, as_json, quiet, dict(
            model=model, dataset=dataset, sparsity=sparsity, selection=selection, exclude=exclude,
            layer_rate=layer_rate, allow_collapse=allow_collapse, nm_policy=nm_policy,
            finetune=None if finetune else False, score_batches=score_batches, score_batch_size=score_batch_size,
            synflow_iterations=synflow_iterations, grasp_temperature=grasp_temperature,
            grasp_reinit_linear=None if grasp_reinit_linear else False,
            width=width, init=init, data_root=data_root, download=download, optimizer=optimizer, lr=lr,
            batch_size=batch_size, epochs=epochs, iterations=iterations, schedule=schedule,
            weight_decay=weight_decay, controls=controls, tolerance=tolerance, margin=margin, set=set_))


for _method in METHODS:
    _command(_method)
