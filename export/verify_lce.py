"""Verification of an LCE export: outputs vs PyTorch on the whole test set, and which layers are binary ops.

Measured for the gates: the LCE interpreter's top-1 agreement with the PyTorch binary network on the whole test
set, the largest logit difference, and the fraction of 1-bit layers that are bit-packed (`packed_fraction`:
binary layers on float inputs stay float ops in LCE). Refused: a binary-activation layer that did not come out
as `LceBconv2d` op(s) with bit-packed INT32 filters of the expected shape (named), or outputs of the wrong shape.
Stored bits per weight are read from the .tflite buffers, never assumed (Bannink et al., 2021).
With `float_layers="int8"` every float layer of at least 1,024 weights must also have its filter stored as
INT8 with one scale per output channel (export.lce_int8; smaller ones stay float32); int8 layers count 8 bits
per weight plus their scales and zero points.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from export.errors import VerificationError
from export.lce_graph import Graph
from export.lce_int8 import MIN_ELEMENTS


class ExportVerificationError(VerificationError):
    """The exported model does not compute what the PyTorch network computes, or lost its binary ops."""


FLOAT_OPS = ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D")
INT8_NOTES = {
    "float": "float layer (first/last layers stay float): int8 weights, one scale per output channel, computed in "
             "float32 after DEQUANTIZE",
    "binary_weights_float_act": "binary weights with float activations: LCE bit-packs only binary-input convs; "
                                "the +-alpha weights are exact in int8 (one scale per output channel)",
}


def layer_table(graph: Graph, ops: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Per conv/linear layer: format, op(s), stored bits; and the binary layers that found no LceBconv2d."""
    bconvs = [o for o in ops if o["op"] == "LceBconv2d"]
    floats = [o for o in ops if o["op"] in FLOAT_OPS]
    used: set[int] = set()
    used_floats: set[int] = set()
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
        elif graph.float_layers == "int8":
            row.update({"note": INT8_NOTES[layer["kind"]], **_int8_row(layer, floats, used_floats)})
        else:
            why = ("binary weights with float activations: LCE bit-packs only binary-input convs, so the exact "
                   "+-alpha weights are stored as float32" if layer["kind"] == "binary_weights_float_act"
                   else "float layer (first/last layers stay float)")
            row.update(op="float conv/fully-connected", bit_packed=False, stored_bits=32 * layer["weights"],
                           bits_limit=32 * layer["weights"], bits_per_weight=32.0, note=why)
        rows.append(row)
    return rows, missing


def _int8_row(layer: dict[str, Any], floats: list[dict[str, Any]], used: set[int]) -> dict[str, Any]:
    """The float op computing `layer` (matched by output channels and filter size) and its stored int8 bits."""
    def fits(o: dict[str, Any]) -> bool:
        shape = o.get("filter_shape") or [0]
        return int(np.prod(shape)) == layer["weights"] and layer["filters"] in (shape[0], shape[-1])

    j = next((j for j, o in enumerate(floats) if j not in used and fits(o) and o.get("filter_type") == "INT8"),
             next((j for j, o in enumerate(floats) if j not in used and fits(o)), None))
    o = floats[j] if j is not None else {}
    if j is not None:
        used.add(j)
    int8 = o.get("filter_type") == "INT8" and o.get("filter_scales") == layer["filters"]
    weight_bits = 8 * o.get("filter_bytes", 4 * layer["weights"])
    scale_bits = 8 * o.get("filter_quant_bytes", 0)
    small = layer["weights"] < MIN_ELEMENTS
    return {"op": f"{o.get('op', 'no op')} ({o.get('filter_type', '?')} filter"
                  f"{' via DEQUANTIZE' if o.get('filter_via') else ''})",
            "bit_packed": False, "int8": int8, "filter_type": o.get("filter_type"), "scales": o.get("filter_scales", 0),
            "weight_bits": weight_bits, "scale_bits": scale_bits, "stored_bits": weight_bits + scale_bits,
            "bits_limit": (32 if small else 8) * layer["weights"],
            "bits_per_weight": (weight_bits + scale_bits) / layer["weights"],
            **({"note": f"fewer than {MIN_ELEMENTS} weights: kept float32 (as TFLite's weight quantizer does)"}
               if small else {})}


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
    unpacked = [r for r in rows if not r["bit_packed"]]
    report["float_layers"] = graph.float_layers
    report["float_layer_weights"] = int(sum(r["weights"] for r in unpacked))
    report["float_layer_bits"] = int(sum(r["stored_bits"] for r in unpacked))  # int8: with scales, zero points
    report["float_bits_per_weight"] = report["float_layer_bits"] / max(1, report["float_layer_weights"])
    not_int8 = [f"{r['layer']} ({r['op']}, {r['scales']} scales for {r['weights']} weights)"
                for r in rows if r.get("int8") is False and r["weights"] >= MIN_ELEMENTS]
    if not_int8:
        raise ExportVerificationError(
            f"float layers of >= {MIN_ELEMENTS} weights were to be stored as int8 (one scale per output channel), but "
            "the .tflite holds: "
            f"{'; '.join(not_int8)}. The .tflite was not written.")
    one_bit = [r for r in rows if r["kind"] in ("binary", "ternary", "binary_weights_float_act")]
    report["packed_fraction"] = len(packed) / len(one_bit) if one_bit else 0.0
    return report
