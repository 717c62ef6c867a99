"""The `lottery` command: a thin layer over the Python API (compress, export, deploy_targets, pipelines).

Method commands (`find imp`, `binarize`, `export onnx`, `bench`, ...) are generated from each method's settings
dataclass (pipelines.cli.commands); `run`, `presets`, `compare` and the listings are written here. Nothing
imports torch until a command runs, so `--help` and the listings answer at once.
"""

from __future__ import annotations

import typer

from pipelines.cli import commands, compare, info, run

app = typer.Typer(
    name="lottery",
    rich_markup_mode="markdown",
    help="From dense and untrained to small, verified and deployable: find lottery tickets, finetune or "
         "binarize them, export for GPUs (ONNX, TensorRT 2:4) and ARM edge devices (LCE), with gates.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
GROUPS = {
    "find": typer.Typer(rich_markup_mode="markdown", no_args_is_help=True,
                        help="Find lottery tickets. Each method writes a run directory with report.json."),
    "export": typer.Typer(rich_markup_mode="markdown", no_args_is_help=True,
                          help="Export a ticket to a deployable artifact, with its parity against PyTorch measured "
                               "and gated."),
    "deploy": typer.Typer(rich_markup_mode="markdown", no_args_is_help=True,
                          help="Run an exported artifact on its device and bring back latency and accuracy."),
}
for _name, _group in GROUPS.items():
    app.add_typer(_group, name=_name)
commands.register_all(app, GROUPS)
info.register(app)
run.register(app)
compare.register(app)


def main() -> None:
    app(prog_name="lottery")  # also under `python -m pipelines.cli` (shell completion keys on the name)
