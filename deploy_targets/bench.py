"""`bench` (`lottery bench INPUT`): latency of an artifact on its deploy target, against the dense baseline on the
same target and the PyTorch eager ticket, with one harness (deploy_targets.latency) and the same threads.

Measure once: accuracy and parity measured by the stage that made the artifact (its record) are reused, not
re-measured; only a new target (a remote board) or an artifact without a record is evaluated here. The target
is chosen by the artifact (a ticket directory: PyTorch eager; `.onnx`: ONNX Runtime; `.tflite`: LCE, here or over
SSH; `.plan`: TensorRT). ORT densifies sparse initializers and no CPU runtime skips unstructured zeros: a latency
ratio near 1 is the honest expectation for an unstructured ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compress.hparams import Hparams, setting
from compress.method import Context, Method, Output
from deploy_targets.ssh_settings import SshHparams

KINDS = ("latest", "onnx", "tflite", "plan", "model")
PROVIDERS = ("cpu", "cuda", "tensorrt")


@dataclass(frozen=True)
class BenchHparams(Hparams):
    artifact: str = setting("latest", choices=KINDS, help="In a pipeline: which earlier artifact to time (latest: "
                                                          "the newest onnx, tflite, plan or model).")
    batch_sizes: tuple[int, ...] = setting((1, 64), flag="batch-size", help="Batch sizes to time (LCE: 1 only).")
    threads: int = setting(1, lo=1, help="Threads for every runtime (the same for all).")
    warmup: int = setting(20, lo=0, help="Untimed warm-up calls per batch size.")
    iterations: int = setting(200, lo=1, help="Timed calls per batch size.")
    provider: str = setting("cpu", choices=PROVIDERS, help="ONNX Runtime provider.")
    device: str = setting("cpu", choices=("cpu", "cuda"), help="PyTorch eager device (ticket directories).")
    reference: bool = setting(True, help="Also time the PyTorch eager ticket behind the artifact and the dense "
                                         "baseline on the same target, in the same run.")
    ssh: SshHparams = setting(factory=SshHparams, prefix="", help="Run a .tflite on an ARM board over SSH.")

    def validate(self) -> None:
        from compress.errors import UsageError

        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise UsageError(f"batch_sizes must be >= 1, got {list(self.batch_sizes)}.")


def _target(path: Path, hp: BenchHparams, work_dir: Path | None = None) -> Any:
    import deploy_targets

    opts: dict[str, Any] = {"threads": hp.threads, "warmup": hp.warmup, "iters": hp.iterations,
                            "provider": hp.provider, "device": hp.device, "work_dir": work_dir,
                            **hp.ssh.target_options()}
    return deploy_targets.for_artifact(path, **opts)


def _timed(target: Any, path: Path, shape: tuple[int, ...], sizes: tuple[int, ...]) -> dict[str, Any]:
    return target.benchmark(path, shape, sizes)["batch"]


def _lce(target: Any, path: Path, data: Any, evaluate: bool) -> tuple[dict[str, Any], float | None, str]:
    """Latency (and accuracy) of a .tflite from ONE launch of the edge runner, here or on the board."""
    from export.lce import to_nhwc

    x, y = data.split("test") if evaluate else (None, None)
    out = target.run(path, None if x is None else to_nhwc(x.numpy()), None if y is None else y.numpy())
    row = {k: out[k] for k in ("latency_ms_p50", "latency_ms_p90", "latency_ms_mean", "iters", "warmup")}
    row["throughput_sps"] = 1e3 / out["latency_ms_p50"] if out["latency_ms_p50"] > 0 else float("inf")
    return {"1": row}, out.get("test_acc"), out["kernels"]


def available(hp: BenchHparams) -> tuple[bool, str]:
    """GPU benches (cuda eager, ORT's CUDA/TensorRT providers) need a GPU; the rest runs anywhere."""
    if hp.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return False, "no CUDA GPU on this machine (torch.cuda.is_available() is False)"
    if hp.provider != "cpu":
        from deploy_targets.onnxruntime import OnnxRuntimeTarget

        return OnnxRuntimeTarget(provider=hp.provider).available()
    return True, ""


def needs(hp: BenchHparams) -> tuple[str, ...]:
    return ("onnx|tflite|plan|model",) if hp.artifact == "latest" else (hp.artifact,)


def run(ctx: Context) -> Output:
    from compress.errors import BackendUnavailableError

    hp: BenchHparams = ctx.settings
    kind, path = next(iter(ctx.inputs.items()))
    target = _target(path, hp, ctx.dir)  # scratch files (the edge runner's) live in this stage's folder
    ok, info = target.available()
    if not ok:
        raise BackendUnavailableError(f"cannot benchmark {path.name} here: {info}.")
    data = ctx.data()
    shape = tuple(data.input_shape)
    sizes = (1,) if kind == "tflite" else tuple(hp.batch_sizes)
    record = ctx.record(kind)
    _check_shape(kind, path, target, record, shape, ctx.scope.dataset)
    metrics: dict[str, Any] = {}
    details: dict[str, Any] = {"target": target.name, "target_info": info, "threads": hp.threads,
                               "warmup": hp.warmup, "iterations": hp.iterations}
    remote = kind == "tflite" and bool(hp.ssh.host)
    reuse = record is not None and record.metrics.get("test_acc") is not None and not remote
    notes = []
    if kind == "tflite":
        lat, acc, kernels = _lce(target, path, data, not reuse)
        notes.append(kernels)
    else:
        lat, acc = _timed(target, path, shape, sizes), None
        if not reuse:
            x, y = data.split("test")
            acc = target.evaluate(path, x.numpy(), y.numpy())["test_acc"]
    if reuse:
        assert record is not None
        metrics["test_acc"] = record.metrics["test_acc"]
        for k in ("parity_agreement", "parity_max_abs_diff", "agreement"):
            if record.metrics.get(k) is not None:
                metrics[k] = record.metrics[k]
        details["accuracy_from"] = f"stage '{record.name}' ({record.method}): measured once, reused"
    else:
        metrics["test_acc"] = acc
        details["accuracy_from"] = f"measured here on {target.name}" + (f" ({hp.ssh.host})" if remote else "")
    first = lat[str(sizes[0])]
    metrics.update(latency_ms_p50=first["latency_ms_p50"], latency_ms_p90=first["latency_ms_p90"],
                   throughput_sps=first["throughput_sps"], file_bytes=_bytes(path))
    details["latency"] = lat
    if hp.reference:
        _references(ctx, hp, kind, path, shape, sizes, metrics, details)
    return Output(metrics, {}, [details["accuracy_from"], *notes], details)


def _references(ctx: Context, hp: BenchHparams, kind: str, path: Path, shape: tuple[int, ...],
                sizes: tuple[int, ...], metrics: dict[str, Any], details: dict[str, Any]) -> None:
    """The eager ticket behind the artifact, and the dense baseline on the same target, timed the same way."""
    from deploy_targets.torch_eager import TorchTarget

    b = str(sizes[0])
    ticket = _source_ticket(ctx, kind, path)
    if ticket is not None and kind != "model":
        eager = _timed(TorchTarget(hp.threads, hp.warmup, hp.iterations, hp.device), ticket, shape, sizes)
        metrics["torch_latency_ms_p50"] = eager[b]["latency_ms_p50"]
        metrics["speedup_vs_torch"] = eager[b]["latency_ms_p50"] / metrics["latency_ms_p50"]
        details["torch_latency"] = eager
    base = ctx.baseline.artifacts.get("model") if ctx.baseline is not None else None
    if base is None or kind in ("tflite", "plan"):
        return  # LCE and TensorRT have no float baseline of the dense model in a pipeline
    if kind == "onnx":
        from export.onnx import export_onnx

        base_path = ctx.dir / "baseline" / "model.onnx"
        if not base_path.is_file():  # the export method's own code, once per bench stage
            export_onnx(base, base_path.parent, sparse_storage="dense", dataset=ctx.scope.dataset)
    else:
        base_path = base
    other = _timed(_target(base_path, hp), base_path, shape, sizes)
    metrics["baseline_latency_ms_p50"] = other[b]["latency_ms_p50"]
    metrics["latency_ratio"] = metrics["latency_ms_p50"] / other[b]["latency_ms_p50"]
    details["baseline_latency"] = other


def _source_ticket(ctx: Context, kind: str, path: Path) -> Path | None:
    if kind == "model":
        return path
    record = ctx.record(kind)
    for inp in (record.inputs if record is not None else []):
        if inp.get("kind") in ("ticket", "binary_ticket", "model") and Path(inp["path"]).is_dir():
            return Path(inp["path"])
    return None


def _check_shape(kind: str, path: Path, target: Any, record: Any, shape: tuple[int, ...], dataset: str) -> None:
    """An artifact made for other inputs is refused by name before anything runs."""
    from compress.errors import ShapeMismatchError

    want = None
    if record is not None and record.details.get("input_shape"):
        want = tuple(record.details["input_shape"])
    elif kind == "onnx":
        import json

        meta = target.metadata(path)
        want = tuple(json.loads(meta["input_shape"])) if "input_shape" in meta else None
    elif kind == "model":
        from compress.io import load_json

        want = tuple(load_json(path / "ticket.json").get("spec", {}).get("input_shape", ())) or None
    if want is not None and want != shape:
        raise ShapeMismatchError(f"{path.name} takes inputs of shape {want}; dataset {dataset} has samples of shape "
                                 f"{shape}. Pass the dataset it was made for (--dataset).")


def _bytes(path: Path) -> int:
    from compress.measure import file_bytes

    return (file_bytes(path) or 0) if path.is_dir() else path.stat().st_size


METHOD = Method(
    name="bench", command=("bench",), settings=BenchHparams, run=run, available=available,
    summary="Latency of an artifact on its target vs the dense baseline and PyTorch eager (accuracy reused)",
    doc="Times p50/p90 and throughput per batch size with one harness for every target; accuracy and parity come "
        "from the stage that made the artifact (measured once).",
    needs=("onnx|tflite|plan|model",), needs_from=needs,
    metrics=("test_acc", "agreement", "parity_agreement", "parity_max_abs_diff", "latency_ms_p50", "latency_ms_p90",
             "throughput_sps", "file_bytes", "torch_latency_ms_p50", "speedup_vs_torch", "baseline_latency_ms_p50",
             "latency_ratio"),
)
