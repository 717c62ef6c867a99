"""The TensorFlow side of the LCE export: graph description -> larq/Keras model -> `.tflite` -> outputs + ops.

Run as `python -m export.lce_worker JOB_DIR [JOB_DIR ...]` with TF_USE_LEGACY_KERAS=1 (larq needs Keras 2).
Each JOB_DIR holds `graph.json` and `arrays.npz` (from export.lce_graph) and optionally `x.npy` (NHWC
inputs); the worker writes `model.tflite`, `lce_out.npy` (LCE interpreter logits on x) and `ops.json`.
With `"float_layers": "int8"` in the graph, the float layers' filters are stored as int8 (export.lce_int8).
It imports only numpy, tensorflow, larq and larq_compute_engine: never torch (a test checks it).
Layers follow larq's `QuantConv2D(input_quantizer="ste_sign", kernel_quantizer="ste_sign", pad_values=1.0)`,
converted with `larq_compute_engine.convert_keras_model(target="arm")` (Geiger & Team Plumerai, 2020).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np


def build_keras(graph: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    """The larq/tf.keras model computing the described network (NHWC)."""
    import larq as lq
    import tensorflow as tf

    k = tf.keras
    inp = k.Input(tuple(graph["input_shape"]), batch_size=1)
    x = inp
    env = {"input": inp}  # tensor name -> Keras tensor: layers read `src` (or `srcs`) and write `id`
    for i, layer in enumerate(graph["layers"]):
        op = layer["op"]
        x = env[layer["src"]] if "src" in layer else x
        if op == "add":
            x = k.layers.Add()([env[name] for name in layer["srcs"]])
        elif op == "to_map":
            x = k.layers.Reshape((1, 1, -1))(x)
        elif op == "flatten":
            x = k.layers.Reshape((1, 1, -1))(k.layers.Flatten()(x))
        elif op == "output":
            x = k.layers.Flatten()(x)
        elif op == "relu":
            x = k.layers.ReLU()(x)
        elif op == "clip":
            x = tf.clip_by_value(x, layer["min"], layer["max"])
        elif op == "affine":
            x = x * tf.constant(arrays[layer["mul"]]) + tf.constant(arrays[layer["add"]])
        elif op in ("max_pool", "avg_pool"):
            cls = k.layers.MaxPool2D if op == "max_pool" else k.layers.AveragePooling2D
            x = cls(layer["kernel"], layer["stride"], padding=layer["padding"])(x)
        elif op == "global_avg_pool":
            x = k.layers.GlobalAveragePooling2D(keepdims=True)(x)
        elif op == "conv":
            x = _conv(k, lq, tf, x, layer, arrays, i)
        else:
            raise ValueError(f"unknown op {op!r} in graph description")
        if "id" in layer:
            env[layer["id"]] = x
    return k.Model(inp, x)


def _conv(k: Any, lq: Any, tf: Any, x: Any, layer: dict[str, Any], arrays: dict[str, np.ndarray], i: int) -> Any:
    binary = layer["kind"] in ("binary", "ternary")
    pad_mode = layer["padding"]
    crop = None
    if pad_mode == "explicit":
        ph, pw = layer["pad"]
        # binary inputs are one-padded (sign(+1) = +1), float inputs zero-padded, as in compress.binarize.layers
        eh = ew = 0
        if not binary:
            # LCE 0.16's converter fuses a symmetric zero Pad into a strided VALID conv as SAME padding, which
            # pads (0, 1) instead of (1, 1): wrong outputs. An extra stride of padding at the end (then cropped)
            # is not fused and computes exactly the PyTorch conv.
            (kh, kw), (sh, sw), (dh, dw) = layer["kernel"], layer["stride"], layer["dilation"]
            crop = ((x.shape[1] + 2 * ph - dh * (kh - 1) - 1) // sh + 1,
                    (x.shape[2] + 2 * pw - dw * (kw - 1) - 1) // sw + 1)
            eh, ew = sh, sw
        x = tf.pad(x, [[0, 0], [ph, ph + eh], [pw, pw + ew], [0, 0]], constant_values=1.0 if binary else 0.0)
        pad_mode = "valid"
    common = dict(filters=layer["filters"], kernel_size=layer["kernel"], strides=layer["stride"],
                  dilation_rate=layer["dilation"], padding=pad_mode)
    if not binary:
        conv = k.layers.Conv2D(**common, use_bias=True, name=f"float_{i}")
        y = conv(x)
        conv.set_weights([arrays[layer["kernels"][0]], arrays[layer["bias"]]])
        if crop is not None:
            y = y[:, : crop[0], : crop[1], :]
        if "mul" in layer:
            y = y * tf.constant(arrays[layer["mul"]]) + tf.constant(arrays[layer["add"]])
        return y
    outs = []
    for j, key in enumerate(layer["kernels"]):
        conv = lq.layers.QuantConv2D(**common, pad_values=1.0, input_quantizer="ste_sign",
                                     kernel_quantizer="ste_sign", kernel_constraint=None, use_bias=False,
                                     name=f"bin_{i}_{j}")
        y = conv(x)
        conv.set_weights([arrays[key]])
        # per-channel multiplier and bias right after the bconv: LCE fuses them into its post-activation
        outs.append(y * tf.constant(arrays[layer["mul"]]) + tf.constant(arrays[layer["add"]]))
    return outs[0] if len(outs) == 1 else k.layers.Add()(outs)


def inspect_ops(flatbuffer: bytes) -> list[dict[str, Any]]:
    """Every op of the .tflite in execution order: its name, and for convs the filter shape/type/bytes."""
    from larq_compute_engine.mlir.python import tflite_schema as schema

    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    builtin = {v: n for n, v in vars(schema.BuiltinOperator).items() if not n.startswith("_")}
    types = {v: n for n, v in vars(schema.TensorType).items() if not n.startswith("_")}
    codes = []
    for i in range(model.OperatorCodesLength()):
        c = model.OperatorCodes(i)
        code = max(c.BuiltinCode(), c.DeprecatedBuiltinCode())
        codes.append(c.CustomCode().decode() if c.CustomCode() else builtin.get(code, str(code)))
    g = model.Subgraphs(0)
    ops = []
    producer = {}  # DEQUANTIZE output -> its input: the int8-stored filter (export.lce_int8)
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        entry: dict[str, Any] = {"op": codes[op.OpcodeIndex()]}
        if entry["op"] == "DEQUANTIZE":
            producer[op.Outputs(0)] = op.Inputs(0)
        if entry["op"] in ("LceBconv2d", "CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D") and op.InputsLength() > 1:
            stored = producer.get(op.Inputs(1), op.Inputs(1))
            t = g.Tensors(stored)
            entry["filter_shape"] = t.ShapeAsNumpy().tolist() if t.ShapeLength() else []
            entry["filter_type"] = types.get(t.Type(), str(t.Type()))
            entry["filter_bytes"] = int(model.Buffers(t.Buffer()).DataLength())
            if stored != op.Inputs(1):
                entry["filter_via"] = "DEQUANTIZE"
            q = t.Quantization()
            if q is not None and q.ScaleLength():
                # scales are float32, zero points int64 in the TFLite schema: both are stored bytes
                entry["filter_scales"] = int(q.ScaleLength())
                entry["filter_quant_axis"] = int(q.QuantizedDimension())
                entry["filter_quant_bytes"] = 4 * int(q.ScaleLength()) + 8 * int(q.ZeroPointLength())
        ops.append(entry)
    return ops


def run_job(job: Path) -> None:
    import larq_compute_engine as lce
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    from export.lce_int8 import int8_weights

    graph = json.loads((job / "graph.json").read_text())
    with np.load(job / "arrays.npz") as f:
        arrays = {key: f[key] for key in f.files}
    model = build_keras(graph, arrays)
    flatbuffer = lce.convert_keras_model(model, target="arm")
    if graph.get("float_layers", "float32") == "int8":
        flatbuffer = int8_weights(flatbuffer)
    _write(job / "model.tflite", flatbuffer)
    _write(job / "ops.json", json.dumps(inspect_ops(flatbuffer), indent=1).encode())
    if (job / "x.npy").is_file():
        x = np.load(job / "x.npy").astype(np.float32)
        out = Interpreter(flatbuffer, num_threads=1).predict(x) if len(x) else np.zeros((0, 0), np.float32)
        np.save(job / "lce_out.npy", np.asarray(out, dtype=np.float32))


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        print("lce_worker needs TF_USE_LEGACY_KERAS=1 (larq runs on Keras 2)", file=sys.stderr)
        return 2
    for job in argv:
        run_job(Path(job))
    # evidence for the tests (and for anyone debugging): which heavy frameworks this process loaded
    loaded = {m: m in sys.modules for m in ("torch", "tensorflow", "larq", "larq_compute_engine")}
    for job in argv:
        _write(Path(job) / "modules.json", json.dumps(loaded).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
