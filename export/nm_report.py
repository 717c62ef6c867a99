"""2:4 compliance of an ONNX graph's weights as TensorRT sees them (after our BN folding, with Gemm's transB).

TensorRT's sparse tensor cores (Ampere+) need at least 2 zeros in every 4 consecutive weights along the
reduction (input-channel) dimension (Mishra et al., 2021, "Accelerating Sparse Deep Neural Networks").
The check itself is `compress.sparsity.nm.check`, shared with N:M selection; this module only finds the
weights TensorRT will see and orients them as (out, in, *kernel): Conv weights are already (K, C/g, R, S);
a Gemm B is (N, K) with transB=1 and (K, N) otherwise; a MatMul's constant B is (K, N).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from compress.sparsity import nm


def constants(model: Any) -> dict[str, np.ndarray]:
    """Every constant tensor of the graph: initializers, sparse initializers (densified), Constant nodes."""
    from onnx import numpy_helper

    from export.onnx_sparse import to_dense_storage

    dense = to_dense_storage(model) if len(model.graph.sparse_initializer) else model
    out = {i.name: numpy_helper.to_array(i) for i in dense.graph.initializer}
    for node in dense.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    out[node.output[0]] = numpy_helper.to_array(a.t)
    return out


def _attr(node: Any, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return default


def weight_layers(model: Any) -> list[dict[str, Any]]:
    """Conv/Gemm/MatMul nodes with the weight oriented (out, in, *kernel), or the reason there is none."""
    consts = constants(model)
    layers = []
    for i, node in enumerate(model.graph.node):
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2:
            continue
        name = node.name or f"{node.op_type}_{i}"
        w = consts.get(node.input[1])
        entry: dict[str, Any] = {"layer": name, "op": node.op_type, "weight": node.input[1], "constant": w is not None}
        if w is not None:
            if node.op_type == "Gemm" and not _attr(node, "transB", 0):
                w = w.T
            elif node.op_type == "MatMul":
                w = w.T if w.ndim == 2 else None
            if node.op_type == "Gemm" and _attr(node, "transA", 0):
                entry["note"] = "transA=1: the activation is transposed; TensorRT may not pick sparse kernels"
        entry["array"] = w
        layers.append(entry)
    return layers


def report(model: Any, n: int = 2, m: int = 4) -> list[dict[str, Any]]:
    """Per layer: shape as TensorRT sees it, M-groups, violating groups, compliance and why not."""
    rows = []
    for entry in weight_layers(model):
        w = entry.pop("array")
        if w is None:
            rows.append({**entry, "compliant": False, "reason": "weight is not a constant: TensorRT cannot use "
                         "sparse kernels (export FC layers as Gemm with constant weights)"})
            continue
        r = nm.check(torch.from_numpy(np.array(w, dtype=np.float32)), n, m, entry["layer"])
        row = {**entry, **r.to_dict(), "density": float(np.count_nonzero(w) / max(1, w.size))}
        if not r.groupable:
            row["reason"] = f"{r.shape[1]} input channels is not a multiple of {m}"
        elif r.violating_groups:
            row["reason"] = f"{r.violating_groups} of {r.groups} groups of {m} hold more than {n} non-zeros"
        rows.append(row)
    return rows


def non_compliant(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if not r["compliant"]]
