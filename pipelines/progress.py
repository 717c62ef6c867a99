"""Progress reporters for the runner: rich bars on a terminal, plain log lines in CI and logs, or nothing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from compress.method import Progress

EvalHook = Callable[[int, int, dict[str, float]], None]

log = logging.getLogger("lottery")


class PlainProgress(Progress):
    """One line per stage start/end and a line every quarter of each training run (for CI and log files)."""

    def stage_start(self, index: int, total: int, name: str, kind: str) -> None:
        self._t0 = time.perf_counter()
        log.info("[%d/%d] %s (%s) ...", index, total, name, kind)

    def stage_end(self, name: str, status: str, detail: str) -> None:
        log.info("      %s: %s%s", name, status, f" ({detail})" if detail else "")

    def train_hook(self, label: str) -> EvalHook:
        marks: set[int] = set()

        def hook(step: int, total: int, m: dict[str, float]) -> None:
            quarter = 4 * step // max(1, total)
            if quarter not in marks and quarter > 0:
                marks.add(quarter)
                log.info("      %s: iteration %d/%d, val_acc %.4f", label, step, total, m.get("val_acc", float("nan")))

        return hook

    def message(self, text: str) -> None:
        log.info("      %s", text)


class RichProgress(Progress):
    """A bar over stages and a bar over the current training run; use as a context manager."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=console, transient=False)
        self.stages = None
        self.train = None

    def __enter__(self) -> RichProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def stage_start(self, index: int, total: int, name: str, kind: str) -> None:
        if self.stages is None:
            self.stages = self.bars.add_task("stages", total=total)
        self.bars.update(self.stages, completed=index - 1, description=f"stage {name} ({kind})")

    def stage_end(self, name: str, status: str, detail: str) -> None:
        if self.stages is not None:
            self.bars.advance(self.stages)
        color = {"passed": "green", "failed": "red", "skipped": "yellow"}.get(status.split(", ")[-1], "white")
        self.bars.console.print(f"[{color}]{name}: {status}[/]{f' ({detail})' if detail else ''}", highlight=False)
        if self.train is not None:
            self.bars.remove_task(self.train)
            self.train = None

    def train_hook(self, label: str) -> EvalHook:
        def hook(step: int, total: int, m: dict[str, float]) -> None:
            if self.train is None:
                self.train = self.bars.add_task(label, total=total)
            self.bars.update(self.train, completed=step, total=total,
                             description=f"  {label} val_acc {m.get('val_acc', float('nan')):.3f}")

        return hook

    def message(self, text: str) -> None:
        self.bars.console.print(f"  {text}", highlight=False)


@contextmanager
def progress_for(quiet: bool) -> Iterator[Progress]:
    """Nothing when quiet; rich bars on a terminal; plain log lines in CI and logs."""
    from pipelines.cli.common import err_console, interactive

    if quiet:
        yield Progress()
    elif interactive():
        with RichProgress(err_console) as bars:
            yield bars
    else:
        yield PlainProgress()
