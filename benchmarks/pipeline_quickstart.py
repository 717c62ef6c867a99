"""`lottery run` (the default quickstart preset) from an empty run root, then again (resume of a finished run).

Runs the real CLI in a subprocess (so peak RSS covers it and its TensorFlow/ORT children) and writes
benchmarks/results/pipeline_quickstart.json: {"stages": [{"name", "kind", "wall_s", "gate", "gates", "metrics"}],
"total_wall_s", "resume_wall_s", "peak_rss_mb", ...}; sizes in the stage metrics are the report's `storage_bytes`
(a ticket's storage model) and `file_bytes` (an artifact's bytes on disk).
Floors: total <= 600 s, resume <= 10 s, peak RSS <= 3 GB, every gate passes.
Run at the defaults (the committed result): python -m benchmarks.pipeline_quickstart
Quick check (shorter training and timing through --set, --keep-going; gates may fail):
python -m benchmarks.pipeline_quickstart --quick --results /tmp/r
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

from benchmarks.common import Run, arguments

ROOT = Path(__file__).resolve().parents[1]
FLOORS = {"total_wall_s": 600, "resume_wall_s": 10, "peak_rss_mb": 3072}
# --quick: the quickstart's stages with far less training and timing (a check that the script runs, not a result)
QUICK = ("dense.train.epochs=1", "imp.train.epochs=1", "imp.rounds=1", "finetune.train.epochs=0.5",
         "binarize.train.epochs=1", "bench.iterations=20", "bench_edge.iterations=20")


def lottery(args: list[str]) -> tuple[float, dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", *args, "--json"], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # 1: a gate failed, recorded in the report
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"lottery run failed with exit code {proc.returncode}")
    return wall, json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default=None, help="preset or .toml (default: lottery run's default, quickstart)")
    ap.add_argument("--quick", action="store_true", help="shorter training and timing (see QUICK): a smoke run")
    ap.add_argument("--out", type=Path, default=None, help="empty run root (default: a fresh temp dir)")
    args = arguments(ap, argv)
    run = Run("pipeline_quickstart", ap, args)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    if out.exists() and any(out.iterdir()):
        ap.error(f"{out} is not empty: the first run must start from an empty run root")
    target = [args.preset] if args.preset else []
    sets = [*(f"--set={s}" for s in QUICK), "--keep-going"] if args.quick else []
    total, rep = lottery([*target, *sets, "--out", str(out)])
    resume, rep2 = lottery([*target, *sets, "--out", str(out)])
    stages = [{"name": s["name"], "kind": s["method"], "wall_s": s["wall_s"], "gate": s["gate"],
               "status": s["status"], "metrics": s["metrics"], "gates": s["gates"], "reason": s["reason"]}
              for s in rep["stages"]]
    facts = run.facts()
    payload = {
        "preset": rep["name"], "status": rep["status"], "stages": stages,
        "total_wall_s": round(total, 2), "resume_wall_s": round(resume, 2),
        "resumed_stages": sum(bool(s["resumed"]) for s in rep2["stages"]), "stage_count": len(rep["stages"]),
        "all_gates_pass": all(s["gate"] in ("pass", "skipped") for s in rep["stages"]),
        "floors": FLOORS,
    }
    payload["floors_met"] = {"total_wall_s": total <= FLOORS["total_wall_s"],
                             "resume_wall_s": resume <= FLOORS["resume_wall_s"],
                             "peak_rss_mb": facts["peak_rss_mb"] <= FLOORS["peak_rss_mb"]}
    run.write(payload, facts=facts)
    print(json.dumps({k: payload[k] for k in ("status", "total_wall_s", "resume_wall_s", "floors_met")}))


if __name__ == "__main__":
    main()
