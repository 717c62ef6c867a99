"""Shared CLI plumbing: friendly errors, logging to stderr, JSON to stdout, rich tables."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from compress.distributed import hand_to_launcher
from compress.errors import DistributedError, LotteryError

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
    """The one error boundary of every command. Bad input (a `LotteryError`): one paragraph, its exit code (2;
    a failed gate 1). Anything unexpected: one paragraph naming the error and where its traceback was saved,
    exit 3 (`--debug` shows the traceback instead). Ctrl-C: 130, finished steps kept."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except LotteryError as e:
            if kwargs.get("debug"):
                raise
            if not (isinstance(e, DistributedError) and hand_to_launcher(str(e))):  # `--nproc`: said once, there
                err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: finished steps are saved; run the same command again to resume.")
            raise typer.Exit(130) from None
        except Exception as e:  # noqa: BLE001 - the boundary: never a bare traceback
            if kwargs.get("debug"):
                raise
            first = (str(e).splitlines() or [""])[0][:300]
            where = getattr(e, "error_log", None)
            saved = f"The traceback is in {where}" if where else "Re-run with --debug to see the traceback"
            err_console.print(f"[bold red]unexpected error[/] ({type(e).__name__}): {escape(first)}. This is a "
                              f"bug in lottery or one of its backends, not in your input. {saved}; please "
                              "report it with that file.", highlight=False, soft_wrap=True)
            raise typer.Exit(3) from None

    return wrapper  # type: ignore[return-value]


def print_json(obj: Any) -> None:
    """Strict JSON to stdout (non-finite numbers as null, named; see compress.io.dumps)."""
    from compress.io import dumps

    sys.stdout.write(dumps(obj) + "\n")


def pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}"
