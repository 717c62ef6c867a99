"""N:M selection: keep the N highest scores in every group of M consecutive weights along the input
(reduction) dimension (Mishra et al., 2021, NVIDIA ASP; Zhou et al., ICLR 2021).

The grouping is `compress.sparsity.nm`'s (shared with the TensorRT export): linear rows split into
runs of M; conv weights viewed as (out, kh, kw, in), i.e. per output channel and kernel position the
input channels in runs of M ("KRSC", the layout TensorRT's sparse kernels read). The N:M pattern
fixes the density (N/M of each layer), so `fractions` only say which layers to leave alone (0).
A layer whose input-channel count is not a multiple of M has no pad-free grouping: with
`nm_policy="fail"` (default) the selection refuses it by name; with `"dense"` it stays dense and a
warning names it.
"""

from __future__ import annotations

import logging

import torch

from compress.errors import UsageError
from compress.mask import Mask
from compress.sparsity import nm

log = logging.getLogger("lottery")
POLICIES = ("fail", "dense")


def nm_select(scores: dict[str, torch.Tensor], mask: Mask, fractions: dict[str, float], pattern: str = "2:4",
              nm_policy: str = "fail", **_: object) -> Mask:
    n, m = nm.parse(pattern)
    if nm_policy not in POLICIES:
        raise UsageError(f"nm_policy must be one of {', '.join(POLICIES)}, got '{nm_policy}'.")
    out = {}
    for name, keep in mask.items():
        if fractions.get(name, 0.0) <= 0:
            out[name] = keep.clone()
            continue
        if not nm.groupable(keep, m):
            cin = keep.shape[1] if keep.ndim > 1 else 1
            if nm_policy == "dense":
                log.warning("layer %s has %d input channels, not a multiple of M=%d: left dense "
                            "(--nm-policy dense)", name, cin, m)
                out[name] = keep.clone()
                continue
            raise UsageError(
                f"layer {name} (weight shape {tuple(keep.shape)}) has {cin} input channels, not a multiple of "
                f"M={m}, so it has no pad-free {n}:{m} groups. Exclude it (--exclude {name} or first/last), or "
                f"pass --nm-policy dense to leave such layers dense with a warning.")
        s = scores[name].double().masked_fill(~keep, -float("inf"))
        groups, kept = nm.to_groups(s, m), nm.to_groups(keep, m)
        # Stable sort: ties keep the lower position, the same on every machine.
        top = torch.sort(groups, dim=1, descending=True, stable=True).indices[:, :n]
        sel = torch.zeros_like(kept).scatter_(1, top, True) & kept
        out[name] = nm.from_groups(sel, tuple(keep.shape))
    return Mask(out)


def is_nm(selection: str) -> bool:
    """True for an N:M pattern name such as '2:4'."""
    return ":" in selection
