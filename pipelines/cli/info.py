"""`lottery models|datasets|methods`: what is available (torch-free: answers at once)."""

from __future__ import annotations

import typer
from rich.table import Table

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
        from compress.catalog import model_names

        _listing("models", model_names(), as_json)

    @app.command("datasets")
    def list_datasets(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
        """List the datasets `--dataset` accepts."""
        from compress.catalog import dataset_names

        _listing("datasets", dataset_names(), as_json)

    @app.command("methods")
    def list_methods(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
        """List every method: its command and its pipeline stage kind (`kind = NAME` in a spec)."""
        from pipelines import registry

        items = {m.name: f"`lottery {' '.join(m.command)}`: {m.summary}" if m.command else m.summary
                 for m in registry.all_methods()}
        _listing("methods (pipeline stage kinds)", items, as_json)
