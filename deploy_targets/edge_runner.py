"""Run a Larq Compute Engine `.tflite` on this machine: latency (p50/p90) and, with data, accuracy and logits.

Standalone on purpose: it is copied to the edge device and needs only Python 3, numpy and the
`larq-compute-engine` package (its interpreter extension is loaded without importing TensorFlow when
possible). With `lce_benchmark_model` on PATH, that tool's timings are added too. Prints one JSON object.
Usage: python edge_runner.py --model model.tflite [--data data.npz --logits-out out.npy] [--threads N]
       python edge_runner.py --probe
"""

import argparse
import glob
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time


def load_interpreter_class():
    """LCE's LiteInterpreter, loaded straight from its extension (no TensorFlow import) when possible."""
    spec = importlib.util.find_spec("larq_compute_engine")
    if spec is None:
        raise SystemExit("larq_compute_engine is not installed for " + sys.executable)
    for base in spec.submodule_search_locations or []:
        found = glob.glob(os.path.join(base, "tflite", "python", "interpreter_wrapper_lite*.so"))
        if found:
            ext = importlib.util.spec_from_file_location("interpreter_wrapper_lite", found[0])
            mod = importlib.util.module_from_spec(ext)
            ext.loader.exec_module(mod)
            return lambda fb, threads: mod.LiteInterpreter(fb, threads, False, False, False)
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    return lambda fb, threads: Interpreter(fb, num_threads=threads).interpreter


def probe():
    out = {"python": sys.version.split()[0], "executable": sys.executable, "machine": platform.machine(),
           "numpy": importlib.util.find_spec("numpy") is not None,
           "lce": importlib.util.find_spec("larq_compute_engine") is not None,
           "lce_benchmark_model": shutil.which("lce_benchmark_model")}
    if out["lce"]:
        try:
            from importlib import metadata

            out["lce_version"] = metadata.version("larq-compute-engine")
        except Exception:
            out["lce_version"] = "unknown"
    return out


def _die_with_parent():
    """On Linux the tool gets SIGKILL when this runner dies (the runner itself dies with lottery)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import signal

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def benchmark_tool(model, threads, warmup, iters):
    """Timings from `lce_benchmark_model` (LCE's C++ benchmark binary) when it is on PATH."""
    tool = shutil.which("lce_benchmark_model")
    if not tool:
        return None
    cmd = [tool, f"--graph={model}", f"--num_threads={threads}", f"--num_runs={iters}", f"--warmup_runs={warmup}"]
    proc = subprocess.run(cmd, capture_output=True, preexec_fn=_die_with_parent())
    text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    stats = {}
    for line in text.splitlines():
        m = re.search(r"count=(\d+).*?min=([\d.]+) max=([\d.]+) avg=([\d.e+]+) std=([\d.]+)", line)
        if m:  # the last such line is the timed runs (the first is warm-up)
            stats = {"count": int(m.group(1)), "min_ms": float(m.group(2)) / 1e3, "max_ms": float(m.group(3)) / 1e3,
                     "avg_ms": float(m.group(4)) / 1e3, "std_ms": float(m.group(5)) / 1e3}
    return {"tool": tool, "returncode": proc.returncode, **stats} if stats else {"tool": tool, "error": text[-500:]}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--data")
    ap.add_argument("--logits-out")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--probe", action="store_true")
    a = ap.parse_args(argv)
    if a.probe:
        print(json.dumps(probe()))
        return 0
    with open(a.model, "rb") as f:
        flatbuffer = f.read()
    try:
        interp = load_interpreter_class()(flatbuffer, a.threads)
        shape = tuple(interp.input_shapes[0])
    except Exception as e:  # one JSON line for the caller to turn into one clear error, never a traceback
        print(json.dumps({"error": "load", "message": _message(e)}))
        return 3
    try:
        return measure(a, interp, shape)
    except Exception as e:
        print(json.dumps({"error": "run", "message": _message(e)}))
        return 3


def _message(e):
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[-1][:300] if lines else '(no message)'}"


def measure(a, interp, shape):
    import numpy as np

    x1 = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for _ in range(a.warmup):
        interp.predict([x1])
    times = []
    for _ in range(max(1, a.iters)):
        t0 = time.perf_counter()
        interp.predict([x1])
        times.append((time.perf_counter() - t0) * 1e3)
    out = {"machine": platform.machine(), "python": sys.version.split()[0], "threads": a.threads,
           "input_shape": list(shape), "batch": 1, "warmup": a.warmup, "iters": len(times),
           "latency_ms_p50": float(np.percentile(times, 50)), "latency_ms_p90": float(np.percentile(times, 90)),
           "latency_ms_mean": float(np.mean(times)),
           "kernels": "LCE optimized ARM kernels" if platform.machine().lower() in ("aarch64", "arm64", "armv7l")
           else "LCE reference kernels (correct, not optimized: x86 numbers say nothing about ARM speed)"}
    if a.data:
        with np.load(a.data) as d:
            x, y = d["x"].astype(np.float32), d["y"]
        logits = np.concatenate([interp.predict([x[i:i + 1]])[0] for i in range(len(x))]) if len(x) else \
            np.zeros((0, 0), np.float32)
        out["samples"] = int(len(y))
        out["test_acc"] = float((logits.argmax(1) == y).mean()) if len(y) else float("nan")
        if a.logits_out:
            np.save(a.logits_out, logits.astype(np.float32))
    tool = benchmark_tool(a.model, a.threads, a.warmup, a.iters)
    if tool is not None:
        out["lce_benchmark_model"] = tool
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
