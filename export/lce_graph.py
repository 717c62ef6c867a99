"""PyTorch binary network -> a framework-free graph description for the Larq Compute Engine worker.

The description is JSON (layers, shapes, NHWC geometry) plus numpy arrays (HWIO kernels, per-channel
multipliers and biases). It pins the conventions of `compress.binarize.layers` so the larq/Keras rebuild
computes the same function: sign(0) = +1, one-padding of binarized inputs (larq `pad_values=1.0`),
pruned binary weights exported as the average of two binary kernels (0 = (+1 + -1) / 2, never +1),
and the NCHW -> NHWC flatten order folded into the next layer's weights (Larq docs; LCE converter).
The network is walked as torch.fx traced it (`export.lce_trace`), each layer naming the tensors it reads and
writes, so residual blocks rebuild with their adds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from compress.binarize.layers import BINARY_TYPES, BinaryConv2d, BinaryLinear
from export.lce_int8 import check_float_layers
from export.lce_trace import UnsupportedLayersError, trace


@dataclass
class Graph:
    """The description: `layers` (JSON-able dicts), `arrays` (name -> float32 array), binary layer facts."""

    input_shape: list[int]
    layers: list[dict[str, Any]] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    float_layers: str = "float32"  # storage of the layers LCE keeps in float: float32 or int8 (export.lce_int8)

    def add(self, key: str, value: torch.Tensor | np.ndarray) -> str:
        self.arrays[key] = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
        return key

    def to_json(self) -> dict[str, Any]:
        return {"format": "lottery.lce-graph/2", "input_shape": self.input_shape, "layers": self.layers,
                "float_layers": self.float_layers}


def _padding(k: tuple[int, int], s: tuple[int, int], p: tuple[int, int], d: tuple[int, int]) -> str:
    """'valid', 'same' (Keras pads exactly like PyTorch) or 'explicit' (an explicit pad op first)."""
    if p == (0, 0):
        return "valid"
    if s == (1, 1) and all(kk % 2 == 1 and pp == (kk - 1) * dd // 2 for kk, pp, dd in zip(k, p, d, strict=True)):
        return "same"
    return "explicit"


def _waste(g: Graph, name: str, cin: int, cout: int) -> dict[str, Any]:
    words = math.ceil(cin / 32)
    info = {"in_channels": cin, "out_channels": cout, "packed_words": words,
            "storage_waste": (words * 32 - cin) / (words * 32)}
    if cin % 32:
        g.warnings.append(f"{name}: {cin} input channels are bit-packed into {words} x 32 bits: "
                          f"{100 * info['storage_waste']:.0f}% of its weight bits and binary MACs are padding "
                          "(use multiples of 32 input channels)")
    if cout % 8:
        g.warnings.append(f"{name}: {cout} output channels; LCE kernels work in blocks of 8, "
                          f"{8 - cout % 8} channel(s) of compute are padding (use multiples of 8)")
    return info


def describe(model: nn.Module, input_shape: tuple[int, ...], float_layers: str = "float32") -> Graph:
    """Describe `model` (eval mode, already masked) for the larq rebuild; see the module docstring.

    Every layer names the tensor it reads (`src`, or `srcs` for an add) and the one it writes (`id`), so
    residual blocks rebuild as they run in PyTorch. `float_layers="int8"` asks the worker to store the filters
    of the layers that stay float (first/last, float-activation ones) as per-channel int8 (export.lce_int8).
    """
    check_float_layers(float_layers)
    steps = trace(model)
    shape = list(input_shape)  # torch layout without batch: (C, H, W) or (F,)
    g = Graph(input_shape=[shape[1], shape[2], shape[0]] if len(shape) == 3 else shape, float_layers=float_layers)
    alias: dict[str, str] = {}           # fx node -> the tensor name it reads as (identity layers, input)
    shapes: dict[str, list[int]] = {}
    perms: dict[str, np.ndarray | None] = {}  # keras feature i = torch feature perm[i] (None for maps)
    users: dict[str, int] = {}
    relu_out: set[str] = set()
    for i, step in enumerate(steps):
        key, name = f"l{i}", step.name
        src = alias.get(step.inputs[0], step.inputs[0]) if step.inputs else ""
        users[name] = step.users
        if step.kind == "input":
            alias[name] = "input"
            shapes["input"], perms["input"] = shape, (np.arange(shape[0]) if len(shape) == 1 else None)
            if len(shape) == 1:
                g.layers.append({"op": "to_map", "src": "input", "id": "input"})
            continue
        if step.kind == "output":
            g.layers.append({"op": "output", "src": src})
            continue
        if step.kind == "add":
            a, b = (alias.get(n, n) for n in step.inputs)
            if shapes[a] != shapes[b] or not _same_perm(perms[a], perms[b]):
                raise UnsupportedLayersError(f"{name}: adds tensors of shapes {shapes[a]} and {shapes[b]} "
                                             "(or differently flattened); LCE export adds equal shapes only.")
            g.layers.append({"op": "add", "srcs": [a, b], "id": name})
            shapes[name], perms[name] = shapes[a], perms[a]
            continue
        m = step.module
        if isinstance(m, (nn.Identity, nn.Dropout)) or (
                (step.kind == "flatten" or isinstance(m, nn.Flatten)) and len(shapes[src]) != 3):
            alias[name] = src  # nothing at inference (a flatten of a vector is a no-op)
            continue
        if isinstance(m, BINARY_TYPES) and m.binary_act and src in relu_out:
            g.warnings.append(f"{step.target}: binarizes the output of a ReLU, so every input sign is +1 (the "
                              "layer sees a constant); put BatchNorm or Hardtanh before binary activations")
        shapes[name], perms[name] = shapes[src], perms[src]  # shape-preserving unless set below
        if step.kind == "relu" or isinstance(m, nn.ReLU):
            g.layers.append({"op": "relu"})
            relu_out.add(name)
        elif step.kind == "flatten" or isinstance(m, nn.Flatten):
            c, h, w_ = shapes[src]
            g.layers.append({"op": "flatten"})
            # keras NHWC flatten index (y*W + x)*C + c holds torch index c*H*W + y*W + x
            shapes[name] = [c * h * w_]
            perms[name] = np.arange(c * h * w_).reshape(c, h, w_).transpose(1, 2, 0).reshape(-1)
        elif isinstance(m, nn.Conv2d):
            shapes[name], perms[name] = _conv(g, step.target, m, shapes[src], key), None
        elif isinstance(m, nn.Linear):
            if perms[src] is None:
                raise UnsupportedLayersError(f"{step.target}: a Linear layer must read a flattened vector.")
            _linear(g, step.target, m, perms[src], key)
            shapes[name], perms[name] = [m.out_features], np.arange(m.out_features)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            # fold into the conv that produced src when nothing else reads that conv's output
            foldable = src == step.inputs[0] and users.get(src) == 1 and g.layers[-1].get("id") == src
            _batchnorm(g, step.target, m, perms[src], key, foldable)
        elif isinstance(m, nn.Hardtanh):
            g.layers.append({"op": "clip", "min": float(m.min_val), "max": float(m.max_val)})
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            shapes[name], perms[name] = _pool(g, step.target, m, shapes[src]), None
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            g.layers.append({"op": "global_avg_pool"})
            shapes[name], perms[name] = [shapes[src][0], 1, 1], None
        g.layers[-1].setdefault("src", src)
        g.layers[-1]["id"] = name  # a folded BatchNorm renames the conv's output to its own
    floats = [x["name"] for x in g.layers if x.get("kind") == "binary_weights_float_act"]
    if floats and not any(x.get("kind") in ("binary", "ternary") for x in g.layers):
        g.warnings.append(f"no layer is bit-packed: binary layers {', '.join(floats)} have float activations "
                          "(MPT-1/32), which LCE runs as float convs with +-alpha weights (32 bits per weight). "
                          "Binary activations (MPT-1/1, `--act binary`) are needed for LceBconv2d.")
    return g


def _same_perm(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def _conv(g: Graph, name: str, m: nn.Conv2d, shape: list[int], key: str) -> list[int]:
    k, s, p, d = m.kernel_size, m.stride, m.padding, m.dilation
    layer = {"op": "conv", "name": name, "filters": m.out_channels, "kernel": list(k), "stride": list(s),
             "pad": list(p), "dilation": list(d), "padding": _padding(k, s, p, d)}
    _conv_body(g, layer, m, lambda t: t.permute(2, 3, 1, 0), key)
    if isinstance(m, BinaryConv2d) and m.binary_act:
        layer["packing"] = _waste(g, name, m.in_channels, m.out_channels)
    g.layers.append(layer)
    return [m.out_channels, (shape[1] + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1,
            (shape[2] + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1]


def _linear(g: Graph, name: str, m: nn.Linear, perm: np.ndarray, key: str) -> None:
    cols = torch.as_tensor(perm)
    layer = {"op": "conv", "name": name, "filters": m.out_features, "kernel": [1, 1], "stride": [1, 1],
             "pad": [0, 0], "dilation": [1, 1], "padding": "valid", "linear": True}
    _conv_body(g, layer, m, lambda t: t[:, cols].t().reshape(1, 1, m.in_features, m.out_features), key)
    if isinstance(m, BinaryLinear) and m.binary_act:
        layer["packing"] = _waste(g, name, m.in_features, m.out_features)
    g.layers.append(layer)


def _batchnorm(g: Graph, name: str, m: nn.Module, perm: np.ndarray | None, key: str, foldable: bool) -> None:
    mul = m.weight.detach() / torch.sqrt(m.running_var + m.eps)
    add = m.bias.detach() - m.running_mean * mul
    if perm is not None and len(mul) != len(perm):  # BatchNorm1d over flattened maps is not per channel
        raise UnsupportedLayersError(f"{name}: BatchNorm over {len(mul)} features after Flatten of "
                                     f"{len(perm)} values is not supported.")
    if perm is not None:
        mul, add = mul[torch.as_tensor(perm)], add[torch.as_tensor(perm)]
    _affine(g, mul, add, key, foldable)


def _conv_body(g: Graph, layer: dict[str, Any], m: nn.Module, to_hwio: Any, key: str) -> None:
    """Kernels and post-multiplier of one conv/linear: binary (1 or 2 bit-packed kernels) or float.

    `to_hwio` maps a torch weight-shaped tensor to the Keras kernel layout (and the flatten permutation).
    """
    out = m.weight.shape[0]
    bias = m.bias.detach().float() if m.bias is not None else torch.zeros(out)
    if isinstance(m, BINARY_TYPES) and m.binary_act:
        sgn = torch.where(m.weight.detach() >= 0, 1.0, -1.0)
        keep = m.keep.detach()
        scale = m.scale().detach().float().reshape(-1).expand(out).clone()
        ternary = not bool(keep.all())
        layer["kind"] = "ternary" if ternary else "binary"
        layer["weights"], layer["kept"] = int(keep.numel()), int(keep.sum())
        if ternary:  # two binary kernels whose average is the ternary kernel exactly
            k1, k2 = torch.where(keep, sgn, 1.0), torch.where(keep, sgn, -1.0)
            layer["kernels"] = [g.add(f"{key}.k0", to_hwio(k1)), g.add(f"{key}.k1", to_hwio(k2))]
            scale, bias = scale / 2, bias / 2
        else:
            layer["kernels"] = [g.add(f"{key}.k0", to_hwio(sgn))]
        layer["mul"], layer["add"] = g.add(f"{key}.mul", scale), g.add(f"{key}.add", bias)
    else:
        # float layer, or binary weights with float activations (MPT-1/32): LCE has no bit-packed kernel for
        # float inputs, so the exact +-alpha (0 where pruned) weights are stored as float32.
        w = (m.binary_weight() if isinstance(m, BINARY_TYPES) else m.weight).detach().float()
        layer["kind"] = "binary_weights_float_act" if isinstance(m, BINARY_TYPES) else "float"
        layer["weights"] = int(w.numel())
        layer["kernels"] = [g.add(f"{key}.k0", to_hwio(w))]
        layer["bias"] = g.add(f"{key}.bias", bias)


def _affine(g: Graph, mul: torch.Tensor, add: torch.Tensor, key: str, foldable: bool = True) -> None:
    """Fold a per-channel affine map into the previous conv's multiplier/bias (LCE fuses it into the bconv)
    when that conv's output feeds nothing else (`foldable`); otherwise emit it as its own op."""
    last = g.layers[-1] if g.layers else None
    mul, add = mul.detach().float(), add.detach().float()
    if foldable and last is not None and last.get("op") == "conv":
        if "mul" in last:
            g.arrays[last["mul"]] = g.arrays[last["mul"]] * mul.numpy()
            g.arrays[last["add"]] = g.arrays[last["add"]] * mul.numpy() + (add.numpy() / len(last["kernels"]))
        else:
            last["mul"], last["add"] = g.add(f"{key}.mul", mul), g.add(f"{key}.add", add)
        return
    g.layers.append({"op": "affine", "mul": g.add(f"{key}.mul", mul), "add": g.add(f"{key}.add", add)})


def _pool(g: Graph, name: str, m: nn.Module, shape: list[int]) -> list[int]:
    k = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size, m.kernel_size)
    s = m.stride if isinstance(m.stride, tuple) else (m.stride or k[0], m.stride or k[1])
    s = tuple(s) if isinstance(s, tuple) else (s, s)
    p = m.padding if isinstance(m.padding, tuple) else (m.padding, m.padding)
    ceil = bool(m.ceil_mode)
    if p != (0, 0) or (ceil and tuple(k) != tuple(s)) or getattr(m, "dilation", 1) not in (1, (1, 1)):
        raise UnsupportedLayersError(f"{name}: {type(m).__name__} with padding={p}, ceil_mode={ceil}, "
                                     f"kernel={k}, stride={s} has no exact Keras equivalent; use padding 0 and "
                                     "ceil_mode only with kernel == stride.")
    c, h, w = shape
    if ceil:
        h, w = math.ceil((h - k[0]) / s[0]) + 1, math.ceil((w - k[1]) / s[1]) + 1
    else:
        h, w = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
    g.layers.append({"op": "max_pool" if isinstance(m, nn.MaxPool2d) else "avg_pool", "kernel": list(k),
                     "stride": list(s), "padding": "same" if ceil else "valid"})
    return [c, h, w]
