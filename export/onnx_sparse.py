"""ONNX `sparse_initializer` storage (ONNX IR >= 4, SparseTensorProto in COO form).

A pruned weight is stored as its non-zero values plus their linearized int64 indices (the ONNX spec
requires int64 indices): 12 bytes per kept weight instead of 4 bytes per weight, so sparse storage pays
off below ~33% density. ONNX Runtime densifies sparse initializers when it loads the model: this saves
download and disk size, not inference time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MODES = ("auto", "dense", "coo")


def _dense_bytes(arr: np.ndarray) -> int:
    return arr.size * arr.itemsize


def _coo_bytes(arr: np.ndarray) -> int:
    return int(np.count_nonzero(arr)) * (arr.itemsize + 8)


def to_sparse_storage(model: Any, mode: str = "auto") -> tuple[Any, list[dict]]:
    """A copy of the ModelProto with float weight initializers moved to COO `sparse_initializer`s.

    `auto` converts a tensor only when COO is smaller; `coo` converts every float tensor of rank >= 2
    holding at least one zero; `dense` converts nothing. Returns the model and a per-tensor report.
    """
    import onnx
    from onnx import numpy_helper

    if mode not in MODES:
        from compress.errors import UsageError

        raise UsageError(f"sparse storage must be one of {', '.join(MODES)}, got '{mode}'.")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    report: list[dict] = []
    if mode == "dense":
        return out, report
    graph_inputs = {i.name for i in out.graph.input}
    keep = []
    for init in out.graph.initializer:
        arr = numpy_helper.to_array(init)
        dense, coo = _dense_bytes(arr), _coo_bytes(arr)
        eligible = (arr.dtype.kind == "f" and arr.ndim >= 2 and init.name not in graph_inputs
                    and np.count_nonzero(arr) < arr.size)
        use = eligible and (coo < dense if mode == "auto" else True)
        if arr.dtype.kind == "f" and arr.ndim >= 2:
            report.append({"name": init.name, "shape": list(arr.shape), "nnz": int(np.count_nonzero(arr)),
                           "dense_bytes": dense, "coo_bytes": coo, "stored": "coo" if use else "dense"})
        if not use:
            keep.append(init)
            continue
        flat = arr.reshape(-1)
        idx = np.flatnonzero(flat).astype(np.int64)
        values = numpy_helper.from_array(flat[idx], name=init.name)
        indices = numpy_helper.from_array(idx, name=f"{init.name}__indices")
        out.graph.sparse_initializer.append(onnx.helper.make_sparse_tensor(values, indices, list(arr.shape)))
    del out.graph.initializer[:]
    out.graph.initializer.extend(keep)
    return out, report


def to_dense_storage(model: Any) -> Any:
    """A copy of the ModelProto with every sparse initializer expanded back to a dense initializer."""
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    for sp in out.graph.sparse_initializer:
        values = numpy_helper.to_array(sp.values).reshape(-1)
        idx = numpy_helper.to_array(sp.indices)
        dense = np.zeros(int(np.prod(sp.dims)), dtype=values.dtype)
        if idx.ndim == 2:  # [NNZ, rank] form
            idx = np.ravel_multi_index(tuple(idx.T), tuple(sp.dims))
        dense[idx] = values
        out.graph.initializer.append(numpy_helper.from_array(dense.reshape(tuple(sp.dims)), name=sp.values.name))
    del out.graph.sparse_initializer[:]
    return out
