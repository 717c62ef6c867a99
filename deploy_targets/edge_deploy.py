"""`deploy_edge` (`lottery deploy edge MODEL.tflite --host USER@HOST | --local`): run an LCE model on an ARM board
over SSH (or here), bring back latency and accuracy from one launch of the edge runner.

The device needs Python 3 with numpy and larq-compute-engine (checked before anything is copied); the runner
(deploy_targets/edge_runner.py) is copied with the model into a private `mktemp -d` folder that is removed
whatever happens. x86 numbers are LCE's reference kernels (correct, not optimized): ARM latency is only known
once measured on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.hparams import Hparams, setting
from compress.method import Context, Method, Output
from deploy_targets.ssh_settings import SshHparams

NOTE = ("x86 numbers are LCE reference kernels (correct, not optimized); ARM latency is measured on the device "
        "itself.")


@dataclass(frozen=True)
class DeployEdgeHparams(Hparams):
    local: bool = setting(False, help="Run here (the default without --host): LCE's reference kernels on x86.")
    ssh: SshHparams = setting(factory=SshHparams, prefix="", help="The board to run on.")
    accuracy: bool = setting(True, help="Also measure test accuracy on the device (the scope's dataset).")
    threads: int = setting(1, lo=1, help="Interpreter threads.")
    warmup: int = setting(10, lo=0, help="Untimed warm-up runs.")
    iterations: int = setting(100, lo=1, help="Timed runs.")

    def validate(self) -> None:
        from compress.errors import UsageError

        if self.local and self.ssh.host:
            raise UsageError("pass either --host USER@HOST (run on the device over SSH) or --local (run here), "
                             "not both.")


def run(ctx: Context) -> Output:
    import torch

    from compress.measure import agreement
    from deploy_targets.arm_lce import LceTarget
    from export.lce import to_nhwc

    hp: DeployEdgeHparams = ctx.settings
    path = ctx.input("tflite")
    target = LceTarget(hp.threads, hp.warmup, hp.iterations, work_dir=ctx.dir, **hp.ssh.target_options())
    x = y = None
    if hp.accuracy:
        xt, yt = ctx.data().split("test")
        x, y = to_nhwc(xt.numpy()), yt.numpy()
    out = target.run(path, x, y)
    logits = out.pop("logits", None)
    metrics = {"latency_ms_p50": out["latency_ms_p50"], "latency_ms_p90": out["latency_ms_p90"],
               "throughput_sps": 1e3 / out["latency_ms_p50"] if out["latency_ms_p50"] > 0 else None,
               "file_bytes": path.stat().st_size, "test_acc": out.get("test_acc")}
    if logits is not None:
        base = None if ctx.baseline is None else ctx.baseline.artifacts.get("predictions")
        metrics["agreement"] = agreement(base, torch.from_numpy(logits.argmax(1)))
    return Output(metrics, {}, [out["kernels"], NOTE], {"target": f"lce-{out['where']}", **out})


METHOD = Method(
    name="deploy_edge", command=("deploy", "edge"), settings=DeployEdgeHparams, run=run,
    summary="Run an LCE .tflite on an ARM board over SSH (or here): latency and accuracy from the device",
    doc="Host key checking is on (BatchMode, no prompts); the device's temporary folder is removed afterwards, "
        "whatever happens. With --local the same runner runs here: on x86 that is LCE's reference kernels.",
    needs=("tflite",),
    metrics=("test_acc", "agreement", "latency_ms_p50", "latency_ms_p90", "throughput_sps", "file_bytes"),
)
