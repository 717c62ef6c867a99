"""The Larq Compute Engine deploy target for `.tflite`: here (LCE interpreter) or on an ARM device over SSH.

Both run `deploy_targets/edge_runner.py` (numpy + LCE only) in a separate process, so TensorFlow never
shares a process with torch. Remote runs use the OpenSSH client (`ssh`/`scp`, so ~/.ssh/config, agents and
jump hosts work) with BatchMode and strict host key checking on by default; the device gets a private
`mktemp -d` folder that is removed afterwards, whatever happens. The local artifact is only read.
x86 numbers come from LCE's reference kernels (correct, not optimized); ARM latency is measured on the device.
"""

from __future__ import annotations

import json
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from compress.errors import BackendUnavailableError, LotteryError
from deploy_targets import register
from deploy_targets.ssh import Ssh
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
                 remote_dir: str = "/tmp", **_: Any) -> None:
        self.threads, self.warmup, self.iters = threads or 1, warmup, iters
        self.remote_python, self.remote_dir = remote_python, remote_dir
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
        with tempfile.TemporaryDirectory(prefix="lottery-edge-") as tmp:
            data = None
            if x is not None:
                data = Path(tmp) / "data.npz"
                np.savez(data, x=np.asarray(x, np.float32), y=np.asarray(y))
            flags = ["--threads", str(self.threads), "--warmup", str(self.warmup), "--iters", str(self.iters)]
            if self.ssh is None:
                out = self._local(artifact, data, Path(tmp), flags)
            else:
                out = self._remote(artifact, data, Path(tmp), flags)
            logits = Path(tmp) / "logits.npy"
            if logits.is_file():
                out["logits"] = np.load(logits)
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
        proc = subprocess.run(cmd, capture_output=True, text=True)
        return _parse(proc, "here")

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
            proc = self.ssh.run(shlex.join(cmd), check=False)
            out = _parse(proc, self.ssh.host)
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


def _parse(proc: subprocess.CompletedProcess, where: str) -> dict[str, Any]:
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-6:])
        raise EdgeRunError(f"the LCE runner failed on {where} (exit {proc.returncode}):\n{tail}")
    return json.loads(lines[-1])


register(".tflite", LceTarget)
