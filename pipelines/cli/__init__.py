"""The `lottery` command: a thin layer over the Python API (compress, export, deploy_targets, pipelines).

Each command lives in its own module; the modules listed in COMMAND_MODULES attach themselves to `app`
or to one of the sub-apps (`find`, `export`, `deploy`) when imported.
"""

from __future__ import annotations

import importlib

import typer

from pipelines.cli import deploy, export, find, info

app = typer.Typer(
    name="lottery",
    rich_markup_mode="markdown",
    help="From dense and untrained to small, verified and deployable: find lottery tickets, finetune or "
         "binarize them, export for GPUs (ONNX, TensorRT 2:4) and ARM edge devices (LCE), with gates.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(find.app, name="find")
app.add_typer(export.app, name="export")
app.add_typer(deploy.app, name="deploy")
info.register(app)

# One line per command module; a module registers on `app` via `register(app)` or decorates a sub-app.
COMMAND_MODULES: list[str] = [
    "pipelines.cli.find_pai",
    "pipelines.cli.finetune",
    "pipelines.cli.compare",
    "pipelines.cli.export_onnx",
    "pipelines.cli.export_tensorrt",
    "pipelines.cli.bench",
    "pipelines.cli.find_mpt",
    "pipelines.cli.binarize",
    "pipelines.cli.export_lce",
    "pipelines.cli.deploy_edge",
    "pipelines.cli.run",
]
for _name in COMMAND_MODULES:
    _mod = importlib.import_module(_name)
    if hasattr(_mod, "register"):
        _mod.register(app)


def main() -> None:
    app()
