"""Check a `.tflite` file before any interpreter touches it.

LCE's interpreter trusts its input: random bytes give "Invalid model", and a file that starts like a
flatbuffer but is garbage after the `TFL3` identifier crashes it (SIGSEGV). So the runner is only started
on a file that has the identifier and whose flatbuffer tables and vectors (buffers, operator codes,
subgraphs, tensors, operators) lie inside the file and index each other consistently. The walk uses the
TFLite schema module that LCE ships (generated flatbuffers code, loaded without importing TensorFlow);
without LCE here (a remote-only deploy) only the identifier is checked and the device's runner decides.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import struct
from pathlib import Path
from typing import Any

from export.errors import ArtifactError

IDENTIFIER = b"TFL3"


def check_tflite(path: str | Path) -> None:
    """Raise `ArtifactError` (one paragraph, naming the file) unless `path` holds a well-formed TFLite model."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ArtifactError(f"cannot read {path}: {e.strerror or e}.") from e
    if len(data) < 16 or data[4:8] != IDENTIFIER:
        head = data[:8].hex(" ") or "nothing"
        raise ArtifactError(f"{path} is not a TensorFlow Lite model: a .tflite flatbuffer carries the identifier "
                            f"'TFL3' at bytes 4-8, this file starts with {head} ({len(data)} bytes). Export one with "
                            "`lottery export lce`.")
    schema = _schema()
    if schema is None:
        return
    try:
        problem = _walk(schema, data)
    except _Bad as e:
        problem = str(e)
    except Exception as e:  # noqa: BLE001 - garbage offsets make the generated reader fail in many ways
        problem = f"its tables cannot be read ({type(e).__name__})"
    if problem:
        raise ArtifactError(f"{path} is a corrupt TensorFlow Lite model: {problem}. The file was cut short or "
                            "damaged, or is not a model; export it again with `lottery export lce`.")


@functools.cache
def _schema() -> Any:
    spec = importlib.util.find_spec("larq_compute_engine")
    for base in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(base, "mlir", "python", "tflite_schema.py")
        if os.path.isfile(path):
            mod_spec = importlib.util.spec_from_file_location("lottery_tflite_schema", path)
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
            return module
    return None


def _walk(schema: Any, data: bytes) -> str | None:
    """The first structural problem of the flatbuffer `data`, or None."""
    n = len(data)
    (root,) = struct.unpack_from("<I", data, 0)
    if not 8 <= root < n - 4:
        return f"its root table offset {root} lies outside the file ({n} bytes)"
    model = schema.Model.GetRootAsModel(data, 0)
    limit = n // 4  # a vector of offsets cannot hold more entries than the file has words

    def count(what: str, k: int) -> int:
        if not 0 <= k <= limit:
            raise _Bad(f"its {what} count {k} does not fit in {n} bytes")
        return k

    n_buffers = count("buffer", model.BuffersLength())
    for i in range(n_buffers):
        b = model.Buffers(i)
        size = b.DataLength()
        if not 0 <= size <= n or b.Offset() + b.Size() > n:
            return f"buffer {i} claims {max(size, b.Size())} bytes, more than the file holds"
    n_codes = count("operator code", model.OperatorCodesLength())
    for i in range(n_codes):
        c = model.OperatorCodes(i)
        c.BuiltinCode(), c.DeprecatedBuiltinCode(), c.CustomCode()
    n_graphs = count("subgraph", model.SubgraphsLength())
    if n_graphs == 0:
        return "it has no subgraph (no computation)"
    for gi in range(n_graphs):
        g = model.Subgraphs(gi)
        n_tensors = count("tensor", g.TensorsLength())
        for ti in range(n_tensors):
            t = g.Tensors(ti)
            if not 0 <= t.Buffer() < max(n_buffers, 1):
                return f"tensor {ti} of subgraph {gi} names buffer {t.Buffer()} of {n_buffers}"
            count("shape", t.ShapeLength())
        for kind, length, get in (("input", g.InputsLength(), g.Inputs), ("output", g.OutputsLength(), g.Outputs)):
            for k in range(count(kind, length)):
                if not 0 <= get(k) < n_tensors:
                    return f"{kind} {k} of subgraph {gi} names tensor {get(k)} of {n_tensors}"
        for oi in range(count("operator", g.OperatorsLength())):
            op = g.Operators(oi)
            if not 0 <= op.OpcodeIndex() < n_codes:
                return f"operator {oi} of subgraph {gi} names operator code {op.OpcodeIndex()} of {n_codes}"
            for length, get in ((op.InputsLength(), op.Inputs), (op.OutputsLength(), op.Outputs)):
                for k in range(count("operand", length)):
                    if not -1 <= get(k) < n_tensors:
                        return f"operator {oi} of subgraph {gi} names tensor {get(k)} of {n_tensors}"
    return None


class _Bad(Exception):
    """A count that cannot be right; turned into the problem text by `check_tflite`."""
