"""The Larq Compute Engine deploy target for `.tflite`: here (LCE interpreter) or on an ARM device over SSH.

Both run `deploy_targets/edge_runner.py` (numpy + LCE only) in a separate process (export.child: it dies
with lottery), so TensorFlow never shares a process with torch. The file is checked first
(deploy_targets.tflite_check); the runner's failures become one line, never its traceback. Remote runs
use the OpenSSH client (`ssh`/`scp`, so ~/.ssh/config, agents and jump hosts work) with BatchMode and
strict host key checking on by default; the device gets a private `mktemp -d` folder that is removed
afterwards, whatever happens. The local artifact is only read; local scratch files (the test set,
logits) live in a `lottery-edge-*` folder inside `work_dir` (the run dir; default: the artifact's folder).
x86 numbers come from LCE's reference kernels (correct, not optimized); ARM latency is measured on the device.
"""

from __future__ import annotations

import json
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from compress import scratch
from compress.errors import BackendUnavailableError, LotteryError
from deploy_targets import register
from deploy_targets.ssh import Ssh
from deploy_targets.tflite_check import check_tflite
from export import child
from export.errors import ArtifactError

RUNNER = Path(__file__).with_name("edge_runner.py")
ARM = ("aarch64", "arm64", "armv7l", "armv8l")


class EdgeRunError(LotteryError):
    """The runner failed on the device (or here) after it started."""


def kernels_label(machine: str) -> str:
    return ("LCE optimized ARM kernels (measured on the device)" if machine.lower() in ARM else
            f"LCE reference kernels on {machine} (correct, not optimized; says nothing about ARM latency)")


class LceTarget:
    name = "lce"

    def __init__(self, threads: int | None = 1, warmup: int = 10, iters: int = 100, host: str | None = None,
                 port: int | None = None, identity: str | Path | None = None, remote_python: str = "python3",
                 accept_new_host_key: bool = False, known_hosts: str | Path | None = None,
                 remote_dir: str = "/tmp", work_dir: str | Path | None = None, timeout_s: float | None = None,
                 **_: Any) -> None:
        self.threads, self.warmup, self.iters = threads or 1, warmup, iters
        self.remote_python, self.remote_dir = remote_python, remote_dir
        # Local scratch (the test set, logits) goes into the caller's run dir, default beside the artifact.
        self.work_dir, self.timeout_s = (Path(work_dir) if work_dir is not None else None), timeout_s
        self.ssh = Ssh(host, port, identity, accept_new_host_key, known_hosts) if host else None

    def available(self) -> tuple[bool, str]:
        if self.ssh is not None:
            return True, f"remote device {self.ssh.host} over SSH (checked when it runs)"
        import importlib.util

        if importlib.util.find_spec("larq_compute_engine") is None:
            return False, "larq-compute-engine is not installed; install the edge extra of lottery"
        return True, kernels_label(platform.machine())

    def run(self, artifact: str | Path, x: np.ndarray | None = None, y: np.ndarray | None = None) -> dict[str, Any]:
        """Latency (and with x/y in the model's NHWC layout: accuracy and logits) of `artifact`."""
        artifact = Path(artifact)
        if not artifact.is_file() or artifact.suffix != ".tflite":
            raise ArtifactError(f"{artifact} is not an existing .tflite file; export one with `lottery export lce`.")
        check_tflite(artifact)  # the interpreter crashes on a corrupt flatbuffer: refuse it before any child runs
        with scratch.folder(self.work_dir or artifact.parent, "lottery-edge-") as tmp:
            data = None
            if x is not None:
                data = tmp / "data.npz"
                np.savez(data, x=np.asarray(x, np.float32), y=np.asarray(y))
            flags = ["--threads", str(self.threads), "--warmup", str(self.warmup), "--iters", str(self.iters)]
            if self.ssh is None:
                out = self._local(artifact, data, tmp, flags)
            else:
                out = self._remote(artifact, data, tmp, flags)
            logits = tmp / "logits.npy"
            if logits.is_file():
                out["logits"] = np.load(logits)
                if not np.isfinite(out["logits"]).all():
                    raise ArtifactError(f"{artifact} computes non-finite outputs (NaN or inf) on the data: its weights "
                                        "are corrupt. Export it again with `lottery export lce`.")
        out["kernels"] = kernels_label(out.get("machine", "?"))
        out["where"] = "local" if self.ssh is None else self.ssh.host
        return out

    def _local(self, artifact: Path, data: Path | None, tmp: Path, flags: list[str]) -> dict[str, Any]:
        ok, reason = self.available()
        if not ok:
            raise BackendUnavailableError(f"cannot run {artifact.name} here: {reason}.")
        cmd = [sys.executable, str(RUNNER), "--model", str(artifact), *flags]
        if data is not None:
            cmd += ["--data", str(data), "--logits-out", str(tmp / "logits.npy")]
        return _parse(child.run(cmd, timeout=self.timeout_s), "this machine", artifact)

    def _remote(self, artifact: Path, data: Path | None, tmp: Path, flags: list[str]) -> dict[str, Any]:
        assert self.ssh is not None
        py = self.remote_python
        env = self.ssh.probe_python(py)  # before anything is copied: a missing Python/LCE leaves no files
        remote = self.ssh.make_dir(self.remote_dir)
        try:
            files = [artifact, RUNNER] + ([data] if data is not None else [])
            self.ssh.put(files, remote)
            cmd = [py, f"{remote}/{RUNNER.name}", "--model", f"{remote}/{artifact.name}", *flags]
            if data is not None:
                cmd += ["--data", f"{remote}/data.npz", "--logits-out", f"{remote}/logits.npy"]
            proc = self.ssh.run(shlex.join(cmd), check=False, timeout=self.timeout_s)
            out = _parse(proc, self.ssh.host, artifact)
            if data is not None:
                self.ssh.get(f"{remote}/logits.npy", tmp / "logits.npy")
        finally:
            self.ssh.remove_dir(remote)
        out["device"] = env
        return out

    def evaluate(self, artifact: Path, x: Any, y: Any) -> dict[str, Any]:
        """Accuracy and logits on torch-layout (NCHW) samples, converted to the model's NHWC layout."""
        x = np.asarray(x, dtype=np.float32)
        out = self.run(artifact, x.transpose(0, 2, 3, 1) if x.ndim == 4 else x, np.asarray(y))
        return {"test_acc": out["test_acc"], "logits": out["logits"], "samples": out["samples"],
                "providers": [out["kernels"]]}

    def benchmark(self, artifact: Path, input_shape: tuple[int, ...], batch_sizes: tuple[int, ...]) -> dict[str, Any]:
        """Batch-1 latency (LCE models are converted with a static batch of 1)."""
        out = self.run(artifact)
        keys = ("latency_ms_p50", "latency_ms_p90", "latency_ms_mean", "iters", "warmup")
        row = {k: out[k] for k in keys}
        row["throughput_sps"] = 1e3 / out["latency_ms_p50"] if out["latency_ms_p50"] > 0 else float("inf")
        return {"target": self.name, "threads": out["threads"], "static_batch": 1, "kernels": out["kernels"],
                "batch": {"1": row}, **({"lce_benchmark_model": out["lce_benchmark_model"]}
                                         if "lce_benchmark_model" in out else {})}


def _parse(proc: subprocess.CompletedProcess, where: str, artifact: Path) -> dict[str, Any]:
    """The runner's JSON line, or one clear error for each way it can fail (never its raw output)."""
    found = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    try:
        out = json.loads(found[-1]) if found else None
    except ValueError:
        out = None
    if isinstance(out, dict) and out.get("error"):
        msg = child.last_line(str(out.get("message", ""))).rstrip(".")
        if out["error"] == "load":
            raise ArtifactError(f"the LCE interpreter on {where} cannot load {artifact.name}: {msg}. The file is "
                                "corrupt or not an LCE/TFLite model; export it again with `lottery export lce`.")
        raise EdgeRunError(f"the LCE runner failed on {where} while running {artifact.name}: {msg}.")
    if proc.returncode == 0 and isinstance(out, dict):
        return out
    if child.crashed(proc.returncode):
        raise ArtifactError(f"the LCE runner crashed on {where} ({child.exit_text(proc.returncode)}) with "
                            f"{artifact.name}: LCE's interpreter does not validate models fully, so a corrupt or "
                            "foreign .tflite crashes it. Export it again with `lottery export lce`.")
    last = child.last_line(proc.stderr) or child.last_line(proc.stdout) or "no output"
    raise EdgeRunError(f"the LCE runner failed on {where} ({child.exit_text(proc.returncode)}): {last}")


register(".tflite", LceTarget)
