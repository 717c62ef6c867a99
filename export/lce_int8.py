"""Int8 weights for the layers Larq Compute Engine keeps in float: a rewrite of the converted `.tflite`.

Each float32 constant filter of a CONV_2D / FULLY_CONNECTED / DEPTHWISE_CONV_2D becomes an INT8 tensor
(symmetric, one scale per output channel, zero point 0, values in [-127, 127]) read through a DEQUANTIZE op;
the op itself, its float32 bias and its float32 activations are unchanged. This is TFLite's own quantized-weight
form (the `pseudo_qconst -> dequantize -> conv_2d` pattern of its quantizer), and TFLite's DEQUANTIZE kernel
dequantizes a constant input once and keeps the result. Torch-free (numpy, flatbuffers and LCE's schema module,
as LCE's own `modify_integer_quantized_model_io_type` rewrites flatbuffers). Jacob et al., "Quantization and
Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference" (CVPR 2018), per-channel scales as
in Krishnamoorthi, "Quantizing deep convolutional networks for efficient inference" (2018).

Why this route (tried with LCE 0.16 / TF 2.21 on the quickstart's binary LeNet-300-100 ticket, mnist5k, top-1
agreement with PyTorch on the 1,000 test digits; float32 export: 958,064 B, agreement 100%):
- FakeQuant on the weights only: the converter constant-folds it, the filters stay FLOAT32 (958,064 B, 99.8%).
- FakeQuant on weights and activations, min/max calibrated on 1,000 training digits (full int8): int8 CONV_2D
  with per-channel INT8 filters, QUANTIZE/DEQUANTIZE around them, LceQuantize reading int8; the interpreter
  runs it (257,656 B), but activation rounding moves signs in front of the binary layer: 98.2% (< 99%).
- `experimental_default_int8_range=(-3, 3)`: the same int8 graph with dummy ranges: 84.6%.
- TFLite dynamic-range (weight-only) quantization: not offered by `convert_keras_model`, and TF's own
  converter does not know larq layers. Its hybrid form (INT8 filter on a float CONV_2D, written by hand) runs
  in the LCE interpreter but quantizes the inputs at run time: 99.3% (253,264 B).
- INT8 filter + DEQUANTIZE (this module): the interpreter computes exactly the float network with the
  dequantized weights: 99.8% per channel (253,552 B) and per tensor (249,856 B); on a smaller binary LeNet
  99.7% per channel vs 99.3% per tensor, so per channel (TFLite's default for conv weights).
So this keeps parity best and stores 8 bits per weight; run-time memory still holds the float32 weights
(DEQUANTIZE's persistent output) and the layer computes in float32: it shrinks the artifact, not the RAM.
Filters under 1,024 weights stay float32, as in TFLite's own weight quantizer (`minimum_elements_for_weights`):
they save at most 3 KB each, and on a digits conv net the 3x3x1 first conv (9 weights per channel) alone took
agreement from 100% to 98.1% when rounded, while the 784x300 layer above costs 0.2 pt.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FLOAT_LAYERS = ("float32", "int8")
QMAX = 127  # narrow symmetric range: -127..127, zero point 0 (TFLite's convention for int8 weights)
MIN_ELEMENTS = 1024  # smaller filters stay float32 (TFLite's minimum_elements_for_weights default)


def check_float_layers(value: str) -> str:
    """`value` if it names a storage for LCE's float layers, else a UsageError naming the valid ones."""
    if value not in FLOAT_LAYERS:
        from compress.errors import UsageError

        raise UsageError(f"float_layers must be one of {', '.join(FLOAT_LAYERS)}, got {value!r}: float32 keeps "
                         "LCE's float layers as they are, int8 stores their weights in 8 bits (one scale per "
                         "output channel).")
    return value


def quantize_per_channel(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 values and float32 scales (one per index of `axis`); an all-zero channel gets scale 1."""
    w = np.asarray(w, dtype=np.float32)
    other = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.abs(w).max(axis=other, keepdims=True)
    scale = np.where(amax > 0, amax / np.float32(QMAX), np.float32(1.0)).astype(np.float32)
    q = np.clip(np.rint(w / scale), -QMAX, QMAX).astype(np.int8)
    return q, scale.reshape(-1)


def int8_weights(flatbuffer: bytes) -> bytes:
    """The same model with every float32 constant conv/fully-connected filter of at least `MIN_ELEMENTS`
    weights stored as per-channel int8 (read through DEQUANTIZE)."""
    import flatbuffers
    from larq_compute_engine.mlir.python import tflite_schema as schema

    ops = schema.BuiltinOperator
    axes = {ops.CONV_2D: 0, ops.FULLY_CONNECTED: 0, ops.DEPTHWISE_CONV_2D: 3}  # the output-channel axis
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    codes = [None if c.customCode else max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    refs = np.bincount([t.buffer for g in model.subgraphs for t in g.tensors], minlength=len(model.buffers))
    dequantize: int | None = None
    for g in model.subgraphs:
        done: set[int] = set()
        rewritten = []
        for op in g.operators:
            axis = axes.get(codes[op.opcodeIndex])
            idx = op.inputs[1] if axis is not None and len(op.inputs) > 1 else -1
            t = g.tensors[idx] if idx >= 0 else None
            data = model.buffers[t.buffer].data if t is not None else None
            if t is not None and idx not in done and t.type == schema.TensorType.FLOAT32 and data is not None \
                    and len(data) >= 4 * MIN_ELEMENTS:
                if dequantize is None:
                    dequantize = _opcode(model, schema, ops.DEQUANTIZE)
                rewritten.append(_dequantize_op(model, g, schema, idx, axis, refs, dequantize))
                done.add(idx)
            rewritten.append(op)
        g.operators = rewritten
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _opcode(model: Any, schema: Any, code: int) -> int:
    entry = schema.OperatorCodeT()
    entry.builtinCode = entry.deprecatedBuiltinCode = code
    entry.version = 1
    model.operatorCodes.append(entry)
    return len(model.operatorCodes) - 1


def _dequantize_op(model: Any, g: Any, schema: Any, idx: int, axis: int, refs: np.ndarray, opcode: int) -> Any:
    """Store tensor `idx`'s float32 data as a new INT8 tensor; `idx` becomes that tensor's DEQUANTIZE output."""
    t = g.tensors[idx]
    w = np.frombuffer(bytes(bytearray(model.buffers[t.buffer].data)), dtype=np.float32).reshape(list(t.shape))
    q, scale = quantize_per_channel(w, axis)
    buf = schema.BufferT()
    buf.data = q.tobytes()
    model.buffers.append(buf)
    params = schema.QuantizationParametersT()
    params.scale, params.zeroPoint, params.quantizedDimension = scale.tolist(), [0] * len(scale), axis
    qt = schema.TensorT()
    qt.shape, qt.type, qt.quantization = list(t.shape), schema.TensorType.INT8, params
    qt.buffer = len(model.buffers) - 1
    qt.name = (t.name or b"filter") + b"/int8"
    g.tensors.append(qt)
    if refs[t.buffer] == 1:  # nothing else reads the float32 copy: drop it from the file
        model.buffers[t.buffer].data = None
    t.buffer = 0  # buffer 0 is TFLite's empty sentinel: the filter is now computed, not stored
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = opcode, [len(g.tensors) - 1], [idx]
    return op
