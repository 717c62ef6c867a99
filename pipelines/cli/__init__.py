"""The `lottery` command: a thin layer over the Python API (compress, export, deploy_targets, pipelines)."""

from __future__ import annotations

import typer

from pipelines.cli import find, info

app = typer.Typer(
    name="lottery",
    help="From dense and untrained to small, verified and deployable: find lottery tickets, finetune or "
         "binarize them, export for GPUs (ONNX, TensorRT 2:4) and ARM edge devices (LCE), with gates.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(find.app, name="find")
info.register(app)


def main() -> None:
    app()
