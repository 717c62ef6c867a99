"""Verification of an LCE export: outputs vs PyTorch on the whole test set, and which layers are binary ops.

Measured for the gates: the LCE interpreter's top-1 agreement with the PyTorch binary network on the whole test
set, the largest logit difference, and the fraction of 1-bit layers that are bit-packed (`packed_fraction`:
binary layers on float inputs stay float ops in LCE). Refused: a binary-activation layer that did not come out
as `LceBconv2d` op(s) with bit-packed INT32 filters of the expected shape (named), or outputs of the wrong shape.
Stored bits per weight are read from the .tflite buffers, never assumed (Bannink et al., 2021).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from export.errors import VerificationError
from export.lce_graph import Graph


class ExportVerificationError(VerificationError):
    """The exported model does not compute what the PyTorch network computes, or lost its binary ops."""


def layer_table(graph: Graph, ops: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Per conv/linear layer: format, op(s), stored bits; and the binary layers that found no LceBconv2d."""
    bconvs = [o for o in ops if o["op"] == "LceBconv2d"]
    used: set[int] = set()
    rows, missing = [], []
    for layer in (entry for entry in graph.layers if entry["op"] == "conv"):
        row: dict[str, Any] = {"layer": layer["name"], "kind": layer["kind"], "weights": layer["weights"],
                               "linear": bool(layer.get("linear"))}
        if layer["kind"] in ("binary", "ternary"):
            cin = layer["packing"]["in_channels"]
            want = [layer["filters"], *layer["kernel"], math.ceil(cin / 32)]
            # the converter may order branches differently: take the first unused bconv of this shape
            found = []
            for _ in layer["kernels"]:
                j = next((j for j, o in enumerate(bconvs) if j not in used and o.get("filter_shape") == want
                          and o.get("filter_type") == "INT32"), None)
                if j is not None:
                    found.append(bconvs[j])
                    used.add(j)
            if len(found) != len(layer["kernels"]):
                missing.append(f"{layer['name']} ({layer['kind']}: expected {len(layer['kernels'])} LceBconv2d with "
                               f"INT32 filter {want}, found {len(found)})")
            bits = sum(8 * o["filter_bytes"] for o in found)
            limit = layer["weights"] * len(layer["kernels"])  # 1 bit dense, 2 bits ternary
            row.update(op="LceBconv2d" + (" x2 (ternary = mean of two binary kernels)" if len(found) == 2 else ""),
                       bit_packed=True, stored_bits=bits, bits_limit=limit, bits_per_weight=bits / layer["weights"],
                       kept=layer["kept"], storage_waste=layer["packing"]["storage_waste"])
        else:
            why = ("binary weights with float activations: LCE bit-packs only binary-input convs, so the exact "
                   "+-alpha weights are stored as float32" if layer["kind"] == "binary_weights_float_act"
                   else "float layer (first/last layers stay float)")
            row.update(op="float conv/fully-connected", bit_packed=False, stored_bits=32 * layer["weights"],
                       bits_limit=32 * layer["weights"], bits_per_weight=32.0, note=why)
        rows.append(row)
    return rows, missing


def verify(graph: Graph, ops: list[dict[str, Any]], torch_out: np.ndarray, lce_out: np.ndarray, y: np.ndarray,
           min_agreement: float = 0.99) -> dict[str, Any]:
    """The verification report (`min_agreement` is recorded, the gates judge); raises `ExportVerificationError`
    when the export lost its binary ops."""
    rows, missing = layer_table(graph, ops)
    if missing:
        raise ExportVerificationError(
            "binary layers did not come out as bit-packed LCE ops (they would run as float ops, or not at all): "
            f"{'; '.join(missing)}. The .tflite was not written.")
    if lce_out.shape != torch_out.shape:
        raise ExportVerificationError(f"the LCE model outputs shape {lce_out.shape[1:]}, PyTorch "
                                      f"{torch_out.shape[1:]}; the .tflite was not written.")
    n = len(y)
    agree = float((lce_out.argmax(1) == torch_out.argmax(1)).mean()) if n else float("nan")
    report = {
        "samples": n, "agreement": agree,
        "lce_test_acc": float((lce_out.argmax(1) == y).mean()) if n else float("nan"),
        "torch_test_acc": float((torch_out.argmax(1) == y).mean()) if n else float("nan"),
        "max_abs_diff": float(np.abs(lce_out - torch_out).max()) if n else 0.0,
        "min_agreement": min_agreement, "ops": dict(Counter(o["op"] for o in ops)), "layers": rows,
    }
    packed = [r for r in rows if r["bit_packed"]]
    report["binary_layer_bits"] = int(sum(r["stored_bits"] for r in packed))
    report["binary_layer_bits_limit"] = int(sum(r["bits_limit"] for r in packed))
    report["binary_layer_weights"] = int(sum(r["weights"] for r in packed))
    report["binary_bits_per_weight"] = report["binary_layer_bits"] / max(1, report["binary_layer_weights"])
    report["ternary"] = any(r["kind"] == "ternary" for r in rows)
    report["float_binary_layers"] = [r["layer"] for r in rows if r["kind"] == "binary_weights_float_act"]
    one_bit = [r for r in rows if r["kind"] in ("binary", "ternary", "binary_weights_float_act")]
    report["packed_fraction"] = len(packed) / len(one_bit) if one_bit else 0.0
    return report
