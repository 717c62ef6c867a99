"""Benchmark: start-up time of `lottery` commands that need no model, each in a fresh process.

Times `lottery --help`, `lottery find imp --help`, `lottery models`, `lottery datasets` and `lottery presets`
(the console script of the running venv, with this checkout first on PYTHONPATH) `--runs` times each and keeps the
median; then runs each once more under `python -X importtime` to record whether it imported torch or numpy.
Floors, for every command: median < 0.5 s, no torch import, exit code 0. `python -c pass` is timed the same way as the
floor's context (the interpreter's own start-up). Writes benchmarks/results/cli_startup.json.
Run at the defaults (the committed result): python -m benchmarks.cli_startup
Quick check: python -m benchmarks.cli_startup --runs 1 --results /tmp/r
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Run, arguments

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (("--help",), ("find", "imp", "--help"), ("models",), ("datasets",), ("presets",))
FLOOR_S = 0.5
HEAVY = ("torch", "numpy")


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}


def launcher() -> tuple[list[str], list[str]]:
    """(command to time, command to run under -X importtime): the venv's `lottery` script, else `-m pipelines.cli`."""
    script = Path(sys.executable).parent / "lottery"
    if script.is_file():
        return [str(script)], [sys.executable, "-X", "importtime", str(script)]
    return [sys.executable, "-m", "pipelines.cli"], [sys.executable, "-X", "importtime", "-m", "pipelines.cli"]


def timed(cmd: list[str], runs: int) -> dict[str, Any]:
    walls, codes = [], set()
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env(), cwd=ROOT, capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        codes.add(proc.returncode)
    return {"median_s": round(statistics.median(walls), 4), "min_s": round(min(walls), 4),
            "runs_s": [round(w, 4) for w in walls], "exit_codes": sorted(codes)}


def imported(cmd: list[str]) -> dict[str, Any]:
    """Which HEAVY packages `cmd` imported, and how many modules in all (from -X importtime)."""
    proc = subprocess.run(cmd, env=env(), cwd=ROOT, capture_output=True, text=True)
    names = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    names = [n for n in names if n != "imported package"]  # the table's header line
    heavy = sorted({n.split(".")[0] for n in names if n.split(".")[0] in HEAVY})
    return {"heavy_imports": heavy, "modules_imported": len(names)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="fresh processes timed per command (the median is kept)")
    args = arguments(ap, argv)
    run = Run("cli_startup", ap, args, with_torch=False)
    time_cmd, import_cmd = launcher()
    python = timed([sys.executable, "-c", "pass"], args.runs)
    rows = []
    for words in COMMANDS:
        row = {"command": " ".join(("lottery", *words)), **timed([*time_cmd, *words], args.runs),
               **imported([*import_cmd, *words])}
        row["floors_met"] = {"median_lt_0.5s": row["median_s"] < FLOOR_S,
                             "no_torch": "torch" not in row["heavy_imports"], "exit_0": row["exit_codes"] == [0]}
        rows.append(row)
        print(f"{row['command']:28s} median {row['median_s']:.3f} s (min {row['min_s']:.3f}) "
              f"heavy imports: {row['heavy_imports'] or 'none'}; floors {row['floors_met']}", flush=True)
    run.write({"launcher": " ".join(time_cmd), "pythonpath_first": str(ROOT), "python_startup": python,
               "results": rows, "floors": {"median_s_lt": FLOOR_S, "imports_torch": False},
               "all_floors_met": all(all(r["floors_met"].values()) for r in rows)})


if __name__ == "__main__":
    main()
