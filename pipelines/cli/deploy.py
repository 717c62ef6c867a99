"""`lottery deploy TARGET ARTIFACT`: the sub-app; each target's command lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Run an exported artifact on its device and bring back latency and accuracy.",
    no_args_is_help=True,
)
