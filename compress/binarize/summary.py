"""Per-layer precision and memory summary, after larq's `model summary` (larq.models.summary).

Bits are counted as stored: a float layer keeps every weight in float32 (pruned ones too, as they are saved
dense); a binary layer keeps 1 sign bit per weight, plus, when pruned (ternary {-a, 0, +a}), a 1-bit keep map
over all positions and a sign bit per kept weight only; scales and biases are float32. (The LCE export writes a
ternary layer as two bit-packed binary kernels: 2 bits per weight there.)
"""

from __future__ import annotations

from typing import Any

from torch import nn

from compress.binarize.layers import BinaryMixin


def layer_bits(m: nn.Module) -> dict[str, Any]:
    """One row: precision of weights/activations, parameter count, kept weights and stored bits."""
    w = getattr(m, "weight", None)
    bias = getattr(m, "bias", None)
    n_bias = bias.numel() if isinstance(bias, nn.Parameter) or hasattr(bias, "numel") else 0
    if isinstance(m, BinaryMixin):
        n = m.weight.numel()
        kept = int(m.keep.sum())
        scales = {"channel": m.weight.shape[0], "layer": 1, "none": 0}[m.scale_mode]
        weight_bits = n if kept == n else n + kept
        return {"kind": type(m).__name__, "weight_bits": 1, "act_bits": 1 if m.binary_act else 32,
                "params": n + n_bias, "kept": kept, "ternary": kept < n,
                "bits": weight_bits + 32 * (scales + n_bias), "float32_bits": 32 * (n + n_bias)}
    params = sum(p.numel() for p in m.parameters(recurse=False))
    kept = int((w != 0).sum()) if isinstance(w, nn.Parameter) and isinstance(m, (nn.Conv2d, nn.Linear)) else params
    if isinstance(m, (nn.Conv2d, nn.Linear)) and w is not None:
        kept += n_bias
    return {"kind": type(m).__name__, "weight_bits": 32, "act_bits": 32, "params": params, "kept": kept,
            "ternary": False, "bits": 32 * params, "float32_bits": 32 * params}


def summarize(model: nn.Module) -> dict[str, Any]:
    """Rows for every module holding parameters, and totals: bits, float32 bits, bytes, binarized share."""
    rows = []
    for name, m in model.named_modules():
        if list(m.children()) or not any(True for _ in m.parameters(recurse=False)):
            continue
        rows.append({"layer": name, **layer_bits(m)})
    binary = [r for r in rows if r["weight_bits"] == 1]
    bits = sum(r["bits"] for r in rows)
    f32 = sum(r["float32_bits"] for r in rows)
    return {
        "layers": rows,
        "params": sum(r["params"] for r in rows),
        "bits_total": bits,
        "float32_bits_total": f32,
        "compression": f32 / bits if bits else 1.0,
        "binary_bits": sum(r["bits"] for r in binary),
        "binary_float32_bits": sum(r["float32_bits"] for r in binary),
        "bits_per_weight": bits / max(1, sum(r["params"] for r in rows)),  # whole model, biases and scales included
        "binary_layer_bits_per_weight": (sum(r["bits"] for r in binary) / max(1, sum(r["params"] for r in binary))
                                         if binary else None),
        "ternary": any(r["ternary"] for r in binary),
    }


def summary_text(s: dict[str, Any]) -> str:
    """A plain-text table (larq style) for reports and logs."""
    head = f"{'layer':<14}{'kind':<14}{'w bits':>7}{'a bits':>7}{'params':>10}{'kept':>10}{'bits':>12}"
    lines = [head, "-" * len(head)]
    for r in s["layers"]:
        lines.append(f"{r['layer']:<14}{r['kind']:<14}{r['weight_bits']:>7}{r['act_bits']:>7}{r['params']:>10}"
                     f"{r['kept']:>10}{r['bits']:>12}")
    lines.append("-" * len(head))
    lines.append(f"total: {s['params']} params, {s['bits_total']} bits stored vs {s['float32_bits_total']} bits "
                 f"float32 ({s['compression']:.1f}x smaller); binarized layers {s['binary_bits']} bits vs "
                 f"{s['binary_float32_bits']} float32 bits" + (" (ternary: pruned weights are exact zeros)"
                                                                if s["ternary"] else ""))
    return "\n".join(lines)
