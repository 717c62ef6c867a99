"""ONNX Runtime sessions that fail loudly: a requested provider that is missing, or that ORT silently
replaced by the CPU one, is an error (ORT's own behaviour is a silent CPU fallback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from compress.errors import UsageError
from export.errors import ArtifactError, ProviderError

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


def session(model: bytes | str | Path, provider: str = "cpu", threads: int | None = None) -> Any:
    """An `onnxruntime.InferenceSession` on `provider`, checked to be the provider actually active."""
    import onnxruntime as ort

    if provider not in PROVIDERS:
        raise UsageError(f"unknown ONNX Runtime provider '{provider}'; valid: {', '.join(PROVIDERS)}.")
    wanted = PROVIDERS[provider]
    available = ort.get_available_providers()
    if wanted not in available:
        raise ProviderError(f"ONNX Runtime provider '{provider}' ({wanted}) is not available in this onnxruntime "
                            f"build; available: {', '.join(available)}. Install onnxruntime-gpu on a machine with a "
                            "CUDA GPU, or use --provider cpu. (No silent fallback to the CPU.)")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    providers = [wanted] + (["CPUExecutionProvider"] if wanted != "CPUExecutionProvider" else [])
    source = model if isinstance(model, bytes) else str(model)
    try:
        sess = ort.InferenceSession(source, sess_options=opts, providers=providers)
    except Exception as e:  # noqa: BLE001 - ORT raises its own Fail/InvalidProtobuf/InvalidGraph classes
        where = "the exported model" if isinstance(model, bytes) else str(model)
        raise ArtifactError(f"ONNX Runtime cannot load {where}: {str(e).splitlines()[0][:300]}. The file is corrupt "
                            "or not an ONNX model; re-export it with `lottery export onnx`.") from e
    _check_signature(sess, "the exported model" if isinstance(model, bytes) else str(model))
    active = sess.get_providers()
    if not active or active[0] != wanted:
        raise ProviderError(f"ONNX Runtime was asked for {wanted} but runs on {', '.join(active)} (it falls back "
                            "silently when the device or its libraries are missing).")
    return sess


def _check_signature(sess: Any, where: str) -> None:
    """A lottery classifier: one float tensor input, at least one output, readable names and metadata."""
    try:
        ins, outs = sess.get_inputs(), sess.get_outputs()
        sig = [(a.name, a.type, a.shape) for a in (*ins, *outs)]
        sess.get_modelmeta().custom_metadata_map  # noqa: B018 - decoding it is the check
    except Exception as e:  # noqa: BLE001 - names and metadata that are not UTF-8, ...
        raise ArtifactError(f"ONNX Runtime loaded {where} but cannot read its inputs, outputs or metadata "
                            f"({type(e).__name__}): the file is corrupt. Re-export it with `lottery export onnx`."
                            ) from e
    if len(ins) != 1 or not outs or sig[0][1] != "tensor(float)":
        found = ", ".join(f"{n}: {t}" for n, t, _ in sig[: len(ins)]) or "none"
        raise ArtifactError(f"{where} is not a lottery classifier: it must take one float tensor input and give "
                            f"logits; its inputs are {found}. Re-export it with `lottery export onnx`.")


def input_batch(sess: Any) -> int | None:
    """The static batch size of the session's input, or None when the batch dimension is dynamic."""
    dim = sess.get_inputs()[0].shape[0]
    return dim if isinstance(dim, int) else None


def run(sess: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits over `x` in chunks; a static-batch model gets its own batch size (last chunk zero-padded)."""
    name = sess.get_inputs()[0].name
    static = input_batch(sess)
    bs = static or batch_size
    outs = []
    for i in range(0, len(x), bs):
        chunk = np.ascontiguousarray(x[i : i + bs], dtype=np.float32)
        n = len(chunk)
        if static and n < static:
            chunk = np.concatenate([chunk, np.zeros((static - n, *chunk.shape[1:]), np.float32)])
        try:
            outs.append(np.asarray(sess.run(None, {name: chunk})[0])[:n])
        except Exception as e:  # noqa: BLE001 - ORT's own error classes: a graph that loads but cannot run
            raise ArtifactError(f"ONNX Runtime loaded the model but cannot run it on inputs of shape "
                                f"{chunk.shape}: {str(e).splitlines()[0][:300] if str(e) else type(e).__name__}. "
                                "The file is corrupt or was exported for other inputs; re-export it with "
                                "`lottery export onnx`.") from e
    logits = np.concatenate(outs) if outs else np.zeros((0,), np.float32)
    if not np.isfinite(logits).all():
        bad = int(logits.size - np.isfinite(logits).sum())
        raise ArtifactError(f"the ONNX model computes {bad} non-finite output{'s' * (bad != 1)} (NaN or inf) on the "
                            "data: its weights are corrupt. Re-export it with `lottery export onnx`.")
    return logits
