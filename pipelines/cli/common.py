"""Shared CLI plumbing: friendly errors, logging to stderr, JSON to stdout, rich tables."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from compress.errors import LotteryError

F = TypeVar("F", bound=Callable[..., Any])
# Logs and CI capture stdout without a terminal: keep tables at a readable width there.
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
out_console = Console(width=None if sys.stdout.isatty() else 120)


def interactive() -> bool:
    """Rich progress and colors on a terminal; plain lines in CI and logs."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def setup_logging(quiet: bool = False, verbose: bool = False) -> None:
    logger = logging.getLogger("lottery")
    logger.handlers.clear()
    logger.propagate = False
    if interactive():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=err_console, show_path=False, show_time=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)


def friendly(fn: F) -> F:
    """Show `LotteryError`s as one paragraph without a traceback, with the error's exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LotteryError as e:
            err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: finished steps are saved; run the same command again to resume.")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}"
