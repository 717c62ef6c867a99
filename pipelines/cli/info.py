"""`lottery models|datasets|finders`: what is available."""

from __future__ import annotations

import typer
from rich.table import Table

from compress import data, finders, models
from pipelines.cli.common import out_console, print_json


def _listing(title: str, items: dict[str, str], as_json: bool) -> None:
    if as_json:
        print_json(items)
        return
    t = Table(title=title)
    t.add_column("name", style="bold")
    t.add_column("description")
    for k, v in items.items():
        t.add_row(k, v)
    out_console.print(t)


def register(app: typer.Typer) -> None:
    @app.command("models")
    def list_models(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
        """List the models `--model` accepts."""
        _listing("models", models.names(), as_json)

    @app.command("datasets")
    def list_datasets(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
        """List the datasets `--dataset` accepts."""
        _listing("datasets", data.names(), as_json)

    @app.command("finders")
    def list_finders(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
        """List the ticket finders (`lottery find METHOD`)."""
        _listing("finders", finders.names(), as_json)
