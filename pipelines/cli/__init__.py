"""The `lottery` command: a thin layer over the Python API (compress, export, deploy_targets, pipelines).

Method commands (`find imp`, `binarize`, `export onnx`, `bench`, ...) are generated from each method's settings
dataclass (pipelines.cli.commands); `run`, `presets`, `compare` and the listings are written here. Nothing
imports torch until a command runs, and only the invoked command's options are generated, so `--help` and the
listings answer at once. `pipelines.cli.app` is the full command tree (tests, completion, introspection).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from pipelines.cli import commands, compare, info, run

HELP = ("From dense and untrained to small, verified and deployable: find lottery tickets, finetune or binarize "
        "them, export for GPUs (ONNX, TensorRT 2:4) and ARM edge devices (LCE), with gates.")
GROUP_HELP = {
    "find": "Find lottery tickets. Each method writes a run directory with report.json.",
    "export": "Export a ticket to a deployable artifact, with its parity against PyTorch measured and gated.",
    "deploy": "Run an exported artifact on its device and bring back latency and accuracy.",
}


def build_app(argv: list[str] | None = None) -> typer.Typer:
    """The command tree; with `argv`, only the command it invokes gets its generated options."""
    app = typer.Typer(name="lottery", rich_markup_mode="markdown", help=HELP, no_args_is_help=True,
                      pretty_exceptions_enable=False)
    groups = {name: typer.Typer(rich_markup_mode="markdown", no_args_is_help=True, help=text)
              for name, text in GROUP_HELP.items()}
    for name, group in groups.items():
        app.add_typer(group, name=name)
    commands.register_all(app, groups, argv)
    info.register(app)
    run.register(app)
    compare.register(app)
    return app


_APP: list[typer.Typer] = []


def __getattr__(name: str) -> Any:
    if name == "app":
        if not _APP:
            _APP.append(build_app())
        return _APP[0]
    raise AttributeError(f"module 'pipelines.cli' has no attribute {name!r}")


def main() -> None:
    # Shell completion needs every command's options; a normal call only the invoked one's.
    argv = None if os.environ.get("_LOTTERY_COMPLETE") else sys.argv[1:]
    from compress import distributed

    if distributed.launched():  # a rank of a data-parallel job: rank 0 runs the command, the others serve it
        from compress.distributed.dispatch import run_rank

        sys.exit(run_rank(lambda: build_app(argv)(prog_name="lottery")))
    build_app(argv)(prog_name="lottery")  # prog_name: also under `python -m pipelines.cli`
