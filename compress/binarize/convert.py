"""Binarizing a ticket's network (the torch side of the `binarize` method, compress.binarize.method).

Binary weights are sign(w) times a per-output-channel scale (XNOR-Net, Rastegari et al., 2016; larq's
default), optional binary activations, first and last layers float by default (XNOR-Net, larq, biprop);
then training with the straight-through estimator (Courbariaux et al., 2016). The ticket's pruned weights
stay exactly zero (the `keep` buffers and masked training), so a pruned binary ticket is ternary {-a, 0, +a}.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from torch import nn

from compress.binarize.layers import BinaryMixin
from compress.binarize.summary import summarize
from compress.binarize.transform import all_layers, binarize_model, default_layers
from compress.errors import UsageError
from compress.ticket import Ticket


def chosen_layers(model: nn.Module, spec: str) -> list[str]:
    if spec == "inner":
        return default_layers(model)
    if spec == "all":
        return all_layers(model)
    return [s.strip().removesuffix(".weight") for s in spec.split(",") if s.strip()]


def binarize_ticket(ticket: Ticket, hp: Any) -> tuple[nn.Module, Ticket]:
    """The ticket's trained network with binary layers (keep = the ticket's mask), before finetuning."""
    if any(t.get("name") in ("binarize", "scored") for t in ticket.spec.extra.get("transforms", [])):
        raise UsageError("this ticket is already binary (its architecture records a binarize transform); "
                         "binarize a float ticket (IMP, GraSP, dense) instead.")
    model = ticket.model("final")
    layers = chosen_layers(model, hp.layers)
    binarize_model(model, layers, hp.act, hp.scale)
    for name, m in model.named_modules():
        if isinstance(m, BinaryMixin) and f"{name}.weight" in ticket.mask:
            m.keep.copy_(ticket.mask[f"{name}.weight"])
    t = {"name": "binarize", "layers": layers, "act": hp.act, "scale": hp.scale}
    spec = replace(ticket.spec, extra={**ticket.spec.extra,
                                       "transforms": [*ticket.spec.extra.get("transforms", []), t]})
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    s = summarize(model)
    binary = {"act": hp.act, "ternary": s["ternary"], "scale": hp.scale, "layers": layers, "sign_zero": "+1",
              "padding": "one" if hp.act == "binary" else "zero", "first_layer_act": "float"}
    precision = {f"{n}.weight": 1 if n in layers else 32 for n in all_layers(model)}
    return model, Ticket(spec, state, ticket.mask, None, precision, {"binary": binary})
