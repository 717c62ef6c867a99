"""Helpers shared by benchmark scripts: flags, machine facts, load average, JSON (and plots) out.

A committed result (`benchmarks/results/<name>.json`) is what its script writes with its DEFAULTS: `arguments`
refuses to write a run with other settings there (pass `--results DIR` for quick or exploratory runs). Every
text in a result is written by the script from what it measured; the machine is described by its facts
(`machine()`) and the load average at the start and end of the run, never by a claim.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from compress.io import save_json

RESULTS = Path(__file__).resolve().parent / "results"
WORK_ARGS = ("results", "out")  # where files go, not what is measured
IDLE_LOAD = 0.5  # 1-minute load average below which the machine counts as idle when a run starts
IDLE_WAIT_S = float(os.environ.get("LOTTERY_BENCH_IDLE_WAIT", "120"))  # how long a run waits for that at most


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MB (Linux reports KB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)


def at_least(a: float, b: float) -> bool:
    """a >= b for means of accuracies (counts / n): a tie in counts must not fail by float rounding, e.g.
    (0.938 + 0.939 + 0.947) / 3 vs (0.95 + 0.947 + 0.942) / 3 - 0.005, both 2,824 of 3,000 predictions."""
    return a >= b - 1e-9


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages now."""
    return [round(v, 2) for v in os.getloadavg()]


def machine(with_torch: bool = True) -> dict[str, Any]:
    """Facts of this machine (pipelines.report.machine) plus the torch version and its thread count.

    `with_torch=False` reads the version from the installed package without importing torch (threads: null)."""
    from pipelines.report import machine as facts

    out = {**facts(), "date": time.strftime("%Y-%m-%d")}
    if with_torch or "torch" in sys.modules:
        import torch

        return {**out, "torch": torch.__version__, "threads": torch.get_num_threads()}
    from importlib.metadata import PackageNotFoundError, version

    try:
        out["torch"] = version("torch")
    except PackageNotFoundError:
        out["torch"] = None
    return {**out, "threads": None}


def load_note(start: list[float], end: list[float], cpus: int | None) -> str:
    """What the load averages say about the run, from the numbers alone."""
    fmt = "/".join
    head = (f"load average (1/5/15 min) {fmt(map(str, start))} at start, {fmt(map(str, end))} at end "
            f"(this run's own work included) on {cpus} CPUs: ")
    if start[0] < IDLE_LOAD:
        return head + f"the 1-min load was below {IDLE_LOAD} at start: measured alone on an idle machine."
    return head + (f"the 1-min load was {start[0]} at start: other work ran within the last minute or was still "
                   "running, so wall times and latencies may be inflated (accuracies are not affected).")


def wait_for_idle(limit_s: float = IDLE_WAIT_S, poll_s: float = 5.0) -> float:
    """Wait until the 1-min load average is below IDLE_LOAD (it lags finished work by about a minute), at most
    `limit_s` seconds; the seconds waited. A run that starts busy says so in its load note."""
    start = time.perf_counter()
    if load_average()[0] >= IDLE_LOAD and limit_s > 0:
        print(f"waiting up to {limit_s:.0f} s for the 1-min load average ({load_average()[0]:.2f}) to fall below "
              f"{IDLE_LOAD} (LOTTERY_BENCH_IDLE_WAIT=0 to skip)", flush=True)
    while load_average()[0] >= IDLE_LOAD and time.perf_counter() - start < limit_s:
        time.sleep(poll_s)
    return round(time.perf_counter() - start, 1)


def arguments(ap: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the script's flags plus `--results`; non-default settings never go to the committed results."""
    ap.add_argument("--results", type=Path, default=RESULTS,
                    help="folder for the JSON (and plot); default benchmarks/results, which holds what each "
                         "script writes with its defaults (other settings need another folder)")
    args = ap.parse_args(argv)
    changed = changed_args(ap, args)
    if changed and args.results.resolve() == RESULTS:
        flags = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in changed.items())
        ap.error(f"non-default settings ({flags}) are not written to {RESULTS}, which holds what each script "
                 "writes with its defaults; pass --results DIR (e.g. a temporary folder).")
    return args


def changed_args(ap: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k not in WORK_ARGS and v != ap.get_default(k)}


def _plain(v: Any) -> Any:
    return str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v


class Run:
    """One benchmark run: its settings, the machine, the load at start and end, its wall time."""

    def __init__(self, name: str, ap: argparse.ArgumentParser, args: argparse.Namespace,
                 with_torch: bool = True) -> None:
        self.name, self.args, self.with_torch = name, args, with_torch
        self.settings = {k: _plain(v) for k, v in vars(args).items() if k not in WORK_ARGS}
        self.at_defaults = not changed_args(ap, args)
        self.idle_wait_s = wait_for_idle()
        self.start = time.perf_counter()
        self.load_start = load_average()

    def facts(self) -> dict[str, Any]:
        end = load_average()
        m = machine(self.with_torch)
        return {"settings": self.settings, "at_defaults": self.at_defaults,
                "wall_s": round(time.perf_counter() - self.start, 1), "peak_rss_mb": peak_rss_mb(), "machine": m,
                "load_average_start": self.load_start, "load_average_end": end, "idle_wait_s": self.idle_wait_s,
                "load_note": load_note(self.load_start, end, m.get("cpus"))}

    def write(self, payload: dict[str, Any], echo: bool = True, facts: dict[str, Any] | None = None) -> Path:
        """Write `payload` plus the run's facts (measured now unless given) to `<results>/<name>.json`, and print
        it unless `echo` is False."""
        return write(self.name, {**payload, **(facts or self.facts())}, self.args.results, echo)

    def copy_plot(self, src: Path) -> Path:
        """Copy a plot the run made to `<results>/<name><suffix>`."""
        dst = Path(self.args.results) / f"{self.name}{Path(src).suffix}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
        print(f"wrote {dst}")
        return dst


def write(name: str, payload: dict[str, Any], results: Path | str = RESULTS, echo: bool = False) -> Path:
    """Write `payload` to `<results>/<name>.json` (atomically, strict JSON), print it if `echo`, say where."""
    path = save_json(Path(results) / f"{name}.json", payload)
    if echo:
        print(path.read_text())
    print(f"wrote {path}")
    return path
