"""Verification of an ONNX export before it is called done.

1. `onnx.checker.check_model(full_check=True)` (with shape inference) on the dense-storage graph. ONNX
   shape inference rejects sparse initializers as Gemm/Conv inputs, so a sparse-storage file gets the
   structural check only, plus an output-identity check against its dense twin.
2. ONNX Runtime vs PyTorch on the whole test set: top-1 agreement, max abs difference and allclose at rtol
   1e-3 / atol 1e-5 (torch.onnx's verification convention; fp16: 1e-2), measured for the parity gates.
3. The providers ORT actually runs on (it falls back to the CPU silently).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from compress.train import predict
from export.errors import VerificationError
from export.ort_session import run, session

# precision -> (rtol, atol, min top-1 agreement); INT8 only ever applies to TensorRT engines.
TOLERANCE = {"fp32": (1e-3, 1e-5, 1.0), "fp16": (1e-2, 1e-2, 0.99), "int8": (1e-1, 1e-1, 0.97)}


def check_graph(dense: Any, stored: Any | None = None) -> None:
    """ONNX checker on the dense-storage graph (full check) and on the sparse-storage one (structural)."""
    import onnx

    try:
        onnx.checker.check_model(dense, full_check=True)
        if stored is not None:
            onnx.checker.check_model(stored)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise VerificationError(f"the exported ONNX graph is invalid: {str(e).splitlines()[0][:300]}") from e


def compare(ref: np.ndarray, got: np.ndarray, precision: str = "fp32") -> dict[str, Any]:
    """Top-1 agreement and max abs difference of two logit arrays, with the pass/fail verdict."""
    rtol, atol, min_agree = TOLERANCE[precision]
    agreement = float((ref.argmax(1) == got.argmax(1)).mean()) if len(ref) else 1.0
    diff = float(np.abs(ref - got).max()) if len(ref) else 0.0
    close = bool(np.allclose(got, ref, rtol=rtol, atol=atol))
    return {"agreement": agreement, "max_abs_diff": diff, "rtol": rtol, "atol": atol, "allclose": close,
            "passed": close and agreement >= min_agree, "min_agreement": min_agree}


def verify(dense: Any, stored: Any | None, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
           provider: str = "cpu", fp16: bool = False, threads: int | None = None) -> dict[str, Any]:
    """Run every check and return the measurements (and ORT's logits). A graph the checker rejects, or a sparse
    file that differs from its dense twin, raises `VerificationError`; parity with PyTorch is measured, not
    judged here (the runner's gates judge it)."""
    check_graph(dense, stored if stored is not None and stored is not dense else None)
    sess = session(dense.SerializeToString(), provider, threads)
    xs = x.numpy()
    ort_logits = run(sess, xs)
    torch_logits = predict(model, x).numpy()
    result = compare(torch_logits, ort_logits, "fp16" if fp16 else "fp32")
    result.update(providers=sess.get_providers(), samples=len(y),
                  ort_test_acc=float((ort_logits.argmax(1) == y.numpy()).mean()) if len(y) else float("nan"),
                  torch_test_acc=float((torch_logits.argmax(1) == y.numpy()).mean()) if len(y) else float("nan"))
    result["logits"] = ort_logits
    if stored is not None and stored is not dense:
        stored_logits = run(session(stored.SerializeToString(), provider, threads), xs)
        identical = bool(np.array_equal(stored_logits, ort_logits))
        result["sparse_storage_identical"] = identical
        if not identical:
            raise VerificationError("the sparse-storage ONNX file gives different outputs from the dense-storage "
                                    f"one (max abs diff {float(np.abs(stored_logits - ort_logits).max()):.3g}). "
                                    "Nothing was written; use --sparse-storage dense.")
    return result
