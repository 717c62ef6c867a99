"""`lottery export FORMAT RUN_DIR`: the sub-app; each format's command lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Export a ticket to a deployable artifact, verified against PyTorch before it is called done.",
    no_args_is_help=True,
)
