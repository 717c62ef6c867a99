"""Data-parallel scaling, 1 vs 2 processes: `lottery train` (LeNet-300-100 on mnist5k, Adam, the same global
batch) in one process and with `--nproc 2` (torch.distributed.run, gloo), each process on one thread, plus
one process on two threads for reference.

On this project's 2-core machines this measures overhead, not a speedup: both ranks share the two cores that
one process on two threads also has, and every step all-reduces the gradients (266K floats) through gloo's
loopback TCP. The figures are reported anyway (issue 16); the correctness of data-parallel training is what
tests/compress/test_distributed.py checks. Writes benchmarks/results/ddp_scaling.json.
Usage: nice -n 10 python -m benchmarks.ddp_scaling [--epochs 5] [--batch-sizes 60 600]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import Run, arguments

REPO = Path(__file__).resolve().parents[1]


def train(out: Path, epochs: float, batch: int, nproc: int, threads: int) -> dict:
    """One `lottery train` run; its report's metrics plus the command's own wall time."""
    import time

    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "pipelines.cli", "train", "-m", "lenet_300_100", "-d", "mnist5k", "--epochs",
           str(epochs), "--batch-size", str(batch), "--threads", str(threads), "--json", "-o", str(out)]
    cmd += ["--nproc", str(nproc)] if nproc > 1 else []
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    rep = json.loads(p.stdout)
    return {**rep["metrics"], "command_wall_s": round(wall, 2)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=float, default=5)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[60, 600])
    args = arguments(ap, argv)
    run = Run("ddp_scaling", ap, args, with_torch=False)
    n_train = 3500  # mnist5k's training split
    rows = []
    for batch in args.batch_sizes:
        steps = max(1, round(args.epochs * -(-n_train // batch)))
        for nproc, threads in ((1, 1), (2, 1), (1, 2)):
            m = train(Path(tempfile.mkdtemp(prefix="bench-ddp-")), args.epochs, batch, nproc, threads)
            rows.append({"batch_size": batch, "processes": nproc, "threads_per_process": threads,
                         "iterations": steps, "train_wall_s": m["train_wall_s"], "command_wall_s": m["command_wall_s"],
                         "samples_per_s": round(steps * batch / m["train_wall_s"], 1), "test_acc": m["test_acc"]})
            print(rows[-1])
    scaling = {}
    for batch in args.batch_sizes:
        one = next(r for r in rows if r["batch_size"] == batch and (r["processes"], r["threads_per_process"]) == (1, 1))
        two = next(r for r in rows if r["batch_size"] == batch and r["processes"] == 2)
        scaling[str(batch)] = round(two["samples_per_s"] / one["samples_per_s"], 3)
    run.write({"model": "lenet_300_100", "dataset": "mnist5k", "epochs": args.epochs, "runs": rows,
               "two_over_one_process_samples_per_s": scaling,
               "note": "2 processes on 2 shared cores: a correctness setup, not a speedup (see the docstring)"})


if __name__ == "__main__":
    main()
