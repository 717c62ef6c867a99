"""`lottery run` (the default quickstart preset) from an empty run root, then again (resume of a finished run).

Runs the real CLI in a subprocess (so peak RSS covers it and its TensorFlow/ORT children) and writes
benchmarks/results/pipeline_quickstart.json:
{"stages": [{"name", "wall_s", "gate", "metrics"}], "total_wall_s", "resume_wall_s", "peak_rss_mb", ...}.
Floors on the project's 2-core machine: total <= 600 s, resume <= 10 s, peak RSS <= 3 GB, every gate passes.
Usage: python -m benchmarks.pipeline_quickstart [--preset quickstart] [--out DIR] [--note TEXT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine, peak_rss_mb, write

ROOT = Path(__file__).resolve().parents[1]


def lottery(args: list[str]) -> tuple[float, dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", *args, "--json"], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"lottery run failed with exit code {proc.returncode}")
    return wall, json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default=None, help="preset or .toml (default: lottery run's default, quickstart)")
    ap.add_argument("--out", type=Path, default=None, help="empty run root (default: a fresh temp dir)")
    ap.add_argument("--note", default="", help="context for the numbers (e.g. other jobs sharing the CPU)")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty: the first run must start from an empty run root")
    target = [args.preset] if args.preset else []
    total, rep = lottery([*target, "--out", str(out)])
    resume, rep2 = lottery([*target, "--out", str(out)])
    stages = [{"name": s["name"], "kind": s["kind"], "wall_s": s["wall_s"], "gate": s["gate"],
               "status": s["status"], "metrics": s["metrics"], "reason": s["reason"]} for s in rep["stages"]]
    payload = {
        "preset": rep["pipeline"], "status": rep["status"], "stages": stages,
        "total_wall_s": round(total, 2), "resume_wall_s": round(resume, 2), "peak_rss_mb": peak_rss_mb(),
        "resumed_stages": sum(bool(s["resumed"]) for s in rep2["stages"]),
        "all_gates_pass": all(s["gate"] in ("pass", "skipped") for s in rep["stages"]),
        "floors": {"total_wall_s": 600, "resume_wall_s": 10, "peak_rss_mb": 3072},
        "machine": machine(), "note": args.note,
    }
    write("pipeline_quickstart", payload)
    print(json.dumps({k: payload[k] for k in ("status", "total_wall_s", "resume_wall_s", "peak_rss_mb")}))


if __name__ == "__main__":
    main()
