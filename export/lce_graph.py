"""PyTorch binary network -> a framework-free graph description for the Larq Compute Engine worker.

The description is JSON (layers, shapes, NHWC geometry) plus numpy arrays (HWIO kernels, per-channel
multipliers and biases). It pins the conventions of `compress.binarize.layers` so the larq/Keras rebuild
computes the same function: sign(0) = +1, one-padding of binarized inputs (larq `pad_values=1.0`),
pruned binary weights exported as the average of two binary kernels (0 = (+1 + -1) / 2, never +1),
and the NCHW -> NHWC flatten order folded into the next layer's weights (Larq docs; LCE converter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from compress.binarize.layers import BINARY_TYPES, BinaryConv2d, BinaryLinear
from export.errors import ExportError

ELEMENTWISE = (nn.ReLU, nn.Hardtanh, nn.Identity, nn.Dropout)
SUPPORTED = "Conv2d, Linear, BinaryConv2d, BinaryLinear, BatchNorm1d/2d, ReLU, Hardtanh, MaxPool2d, AvgPool2d, " \
            "AdaptiveAvgPool2d(1), Flatten, Dropout, Identity, nested nn.Sequential"


class UnsupportedLayersError(ExportError):
    """Layers that Larq Compute Engine (through larq/Keras) cannot express."""


@dataclass
class Graph:
    """The description: `layers` (JSON-able dicts), `arrays` (name -> float32 array), binary layer facts."""

    input_shape: list[int]
    layers: list[dict[str, Any]] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, key: str, value: torch.Tensor | np.ndarray) -> str:
        self.arrays[key] = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
        return key

    def to_json(self) -> dict[str, Any]:
        return {"format": "lottery.lce-graph/1", "input_shape": self.input_shape, "layers": self.layers}


def flatten_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Leaf modules in execution order; raises listing every module LCE export cannot express."""
    out: list[tuple[str, nn.Module]] = []
    bad: list[str] = []

    def walk(prefix: str, m: nn.Module) -> None:
        if isinstance(m, nn.Sequential):
            for n, child in m.named_children():
                walk(f"{prefix}.{n}" if prefix else n, child)
        elif isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d,
                            nn.AdaptiveAvgPool2d, nn.Flatten, *ELEMENTWISE)):
            out.append((prefix, m))
            if isinstance(m, nn.Conv2d) and (m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str)):
                bad.append(f"{prefix} (Conv2d with groups={m.groups}, padding={m.padding!r}, mode={m.padding_mode})")
            if isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size not in (1, (1, 1)):
                bad.append(f"{prefix} (AdaptiveAvgPool2d to {m.output_size}: only global pooling (1) is supported)")
        else:
            kind = "custom forward (e.g. a residual add)" if list(m.children()) else "no LCE equivalent"
            bad.append(f"{prefix or '<model>'} ({type(m).__name__}: {kind})")

    walk("", model)
    if bad:
        raise UnsupportedLayersError(
            f"the model has layers Larq Compute Engine export cannot express: {'; '.join(bad)}. Supported: "
            f"{SUPPORTED}, chained in an nn.Sequential (residual blocks are not exported yet).")
    return out


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


def describe(model: nn.Module, input_shape: tuple[int, ...]) -> Graph:
    """Describe `model` (eval mode, already masked) for the larq rebuild; see the module docstring."""
    mods = flatten_modules(model)
    shape = list(input_shape)  # torch layout without batch: (C, H, W) or (F,)
    g = Graph(input_shape=[shape[1], shape[2], shape[0]] if len(shape) == 3 else shape)
    perm: np.ndarray | None = np.arange(shape[0]) if len(shape) == 1 else None  # keras feature i = torch perm[i]
    vector = len(shape) == 1
    if vector:
        g.layers.append({"op": "to_map"})
    prev: nn.Module | None = None
    for i, (name, m) in enumerate(mods):
        if isinstance(m, BINARY_TYPES) and m.binary_act and isinstance(prev, nn.ReLU):
            g.warnings.append(f"{name}: binarizes the output of a ReLU, so every input sign is +1 (the layer "
                              "sees a constant); put BatchNorm or Hardtanh before binary activations")
        prev = m
        key = f"l{i}"
        if isinstance(m, nn.Conv2d):
            k, s, p, d = m.kernel_size, m.stride, m.padding, m.dilation
            layer = {"op": "conv", "name": name, "filters": m.out_channels, "kernel": list(k), "stride": list(s),
                     "pad": list(p), "dilation": list(d), "padding": _padding(k, s, p, d)}
            _conv_body(g, layer, m, lambda t: t.permute(2, 3, 1, 0), key)
            h = (shape[1] + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
            ww = (shape[2] + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
            if isinstance(m, BinaryConv2d) and m.binary_act:
                layer["packing"] = _waste(g, name, m.in_channels, m.out_channels)
            shape = [m.out_channels, h, ww]
            g.layers.append(layer)
        elif isinstance(m, nn.Linear):
            assert perm is not None, "a Linear layer must follow Flatten"
            cols = torch.as_tensor(perm)
            layer = {"op": "conv", "name": name, "filters": m.out_features, "kernel": [1, 1], "stride": [1, 1],
                     "pad": [0, 0], "dilation": [1, 1], "padding": "valid", "linear": True}
            _conv_body(g, layer, m, lambda t, c=cols, n=m: t[:, c].t().reshape(1, 1, n.in_features, n.out_features),
                       key)
            if isinstance(m, BinaryLinear) and m.binary_act:
                layer["packing"] = _waste(g, name, m.in_features, m.out_features)
            shape, perm = [m.out_features], np.arange(m.out_features)
            g.layers.append(layer)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            mul = m.weight.detach() / torch.sqrt(m.running_var + m.eps)
            add = m.bias.detach() - m.running_mean * mul
            if perm is not None and len(mul) != len(perm):  # BatchNorm1d over flattened maps is not per channel
                raise UnsupportedLayersError(f"{name}: BatchNorm over {len(mul)} features after Flatten of "
                                             f"{len(perm)} values is not supported.")
            if perm is not None:
                mul, add = mul[torch.as_tensor(perm)], add[torch.as_tensor(perm)]
            _affine(g, mul, add, key)
        elif isinstance(m, nn.ReLU):
            g.layers.append({"op": "relu"})
        elif isinstance(m, nn.Hardtanh):
            g.layers.append({"op": "clip", "min": float(m.min_val), "max": float(m.max_val)})
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            shape = _pool(g, name, m, shape)
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            g.layers.append({"op": "global_avg_pool"})
            shape = [shape[0], 1, 1]
        elif isinstance(m, nn.Flatten):
            if len(shape) == 3:
                c, h, w_ = shape
                # keras NHWC flatten index (y*W + x)*C + c holds torch index c*H*W + y*W + x
                perm = np.arange(c * h * w_).reshape(c, h, w_).transpose(1, 2, 0).reshape(-1)
                g.layers.append({"op": "flatten"})
                shape = [c * h * w_]
        # Identity / Dropout: nothing at inference
    g.layers.append({"op": "output"})
    floats = [x["name"] for x in g.layers if x.get("kind") == "binary_weights_float_act"]
    if floats and not any(x.get("kind") in ("binary", "ternary") for x in g.layers):
        g.warnings.append(f"no layer is bit-packed: binary layers {', '.join(floats)} have float activations "
                          "(MPT-1/32), which LCE runs as float convs with +-alpha weights (32 bits per weight). "
                          "Binary activations (MPT-1/1, `--act binary`) are needed for LceBconv2d.")
    return g


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


def _affine(g: Graph, mul: torch.Tensor, add: torch.Tensor, key: str) -> None:
    """Fold a per-channel affine map into the previous conv's multiplier/bias (LCE fuses it into the bconv)."""
    last = g.layers[-1] if g.layers else None
    mul, add = mul.detach().float(), add.detach().float()
    if last is not None and last.get("op") == "conv":
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
