"""Multi-Prize Tickets (Diffenderfer & Kailkhura, ICLR 2021; biprop): prune and binarize a random network.

Per seed: level 0 trains the float network of the same architecture (the comparison); level 1 freezes the
random weights, learns one score per weight (edge-popup straight-through gradients) and keeps the top-k
scored weights, binarized as alpha * sign(w) (alpha = mean |w| over the kept weights of a layer).
`act="float"` is MPT-1/32, `act="binary"` MPT-1/1 (sign activations, straight-through estimator).
The ticket is saved with BinaryConv2d/BinaryLinear layers (keep = top-k mask, scale "layer"), its scores
beside it in scores.safetensors.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.binarize.scored import SCORE_INITS, SELECTIONS, scored_layers, scored_model, update_masks
from compress.binarize.summary import summarize
from compress.binarize.transform import ACTS, all_layers
from compress.data import Dataset
from compress.errors import UsageError
from compress.finders.hparams import ControlHparams, FindHparams
from compress.finders.rundir import level_dir
from compress.hparams import check_range, field
from compress.io import load_json, save_tensors
from compress.mask import Mask
from compress.models import ModelSpec, build
from compress.ticket import TICKET_FILE, Ticket, _index
from compress.train import TrainHparams, evaluate, train

log = logging.getLogger("lottery")
WEIGHT_INITS = ("kaiming_normal", "signed_constant")
BNS = ("affine", "plain", "none")


def _score_train() -> TrainHparams:
    return TrainHparams(optimizer="adam", lr=0.01, epochs=10, batch_size=64, schedule="cosine")


@dataclass(frozen=True)
class MptHparams(FindHparams):
    keep: float = 0.5                 # fraction of weights KEPT (biprop's prune_rate)
    act: str = "float"                # float: MPT-1/32; binary: MPT-1/1
    selection: str = "layerwise"      # top-k per layer or over all layers
    score_init: str = "kaiming_uniform"
    weight_init: str = "kaiming_normal"
    bn: str = "affine"                # BatchNorm after every hidden layer: learned affine, plain, or none
    baseline: bool = True             # level 0: train the float net of the same architecture for comparison
    scores: TrainHparams = field(default_factory=_score_train)  # training of the scores (and BN affine)
    controls: ControlHparams = field(default_factory=lambda: ControlHparams(controls=()))

    def validate(self) -> None:
        check_range("keep", self.keep, 0.0, 1.0, lo_open=True)
        for name, value, valid in (("act", self.act, ACTS), ("selection", self.selection, SELECTIONS),
                                   ("score_init", self.score_init, SCORE_INITS),
                                   ("weight_init", self.weight_init, WEIGHT_INITS), ("bn", self.bn, BNS)):
            if value not in valid:
                raise UsageError(f"{name} must be one of {', '.join(valid)}, got '{value}'.")


def base_spec(spec: ModelSpec, hp: MptHparams) -> ModelSpec:
    """The float architecture (with BatchNorm when asked): level 0 trains it, level 1 scores it."""
    transforms = [{"name": "batchnorm", "affine": hp.bn == "affine"}] if hp.bn != "none" else []
    return replace(spec, extra={**spec.extra, "transforms": [*spec.extra.get("transforms", []), *transforms]})


def ticket_spec(base: ModelSpec, hp: MptHparams, layers: list[str]) -> ModelSpec:
    t = {"name": "binarize", "layers": layers, "act": hp.act, "scale": "layer"}
    return replace(base, extra={**base.extra, "transforms": [*base.extra.get("transforms", []), t]})


@torch.no_grad()
def init_weights(model: nn.Module, how: str, seed: int) -> nn.Module:
    """Kaiming normal (fan_in, ReLU gain) or its signed-constant variant (Ramanujan et al., 2020)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            std = math.sqrt(2.0 / fan_in)
            w = torch.randn(m.weight.shape, generator=g) * std
            m.weight.copy_(w.sign() * std if how == "signed_constant" else w)
            if m.bias is not None:
                m.bias.zero_()
    return model


def run_seed(run: Path, hp: MptHparams, data: Dataset, spec: ModelSpec, seed: int) -> None:
    """Level 0: trained float net; level 1: the Multi-Prize Ticket. Finished levels are skipped."""
    base = base_spec(spec, hp)
    random_net = init_weights(build(base, seed=seed), hp.weight_init, seed)
    init = {k: v.clone() for k, v in random_net.state_dict().items()}
    l0 = level_dir(run, seed, 0)
    if hp.baseline and not (l0 / TICKET_FILE).is_file():
        model = copy.deepcopy(random_net)
        r = train(model, data, hp.train, seed=seed)
        _save(l0, base, init, Mask.ones_like(model), model, r.metrics(), hp, seed, 0, {})
        log.info("seed %d level 0 (trained float): test_acc %.4f (%.1f s)", seed, r.test_acc, r.wall_s)
    l1 = level_dir(run, seed, 1)
    if (l1 / TICKET_FILE).is_file():
        return
    layers = all_layers(random_net)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(10_007 * (seed + 1))
        search = scored_model(copy.deepcopy(random_net), hp.keep, hp.act, hp.selection, hp.score_init)
    r = train(search, data, hp.scores, seed=seed)
    ticket, scores = to_ticket(search, init, base, hp, layers)
    model = ticket.model("final")
    loss, acc = evaluate(model, data.x_test, data.y_test)
    metrics = {**r.metrics(), "test_acc": acc, "test_loss": loss}
    save_tensors(l1 / "scores.safetensors", scores)
    _save(l1, ticket.spec, ticket.init, ticket.mask, model, metrics, hp, seed, 1, ticket.meta["binary"],
          final=ticket.final, precision=ticket.precision)
    log.info("seed %d level 1 (MPT-1/%s, keep %.2f): test_acc %.4f (%.1f s)", seed,
             "1" if hp.act == "binary" else "32", hp.keep, acc, r.wall_s)


def to_ticket(search: nn.Module, init: dict[str, torch.Tensor], base: ModelSpec, hp: MptHparams,
              layers: list[str]) -> tuple[Ticket, dict[str, torch.Tensor]]:
    """The searched network as a Ticket of plain binary layers (keep = top-k mask, scale = layer)."""
    update_masks(search, hp.keep, hp.selection)
    scored = scored_layers(search)
    scores = {f"{n}.scores": m.scores.detach().clone() for n, m in scored.items()}
    state = {k: v.detach().clone() for k, v in search.state_dict().items() if not k.endswith(".scores")}
    mask = Mask({f"{n}.weight": m.keep.clone() for n, m in scored.items()})
    spec = ticket_spec(base, hp, layers)
    start = {**init, **{f"{n}.keep": m.keep.clone() for n, m in scored.items()}}
    alpha = {n: float((m.weight.abs() * m.keep).sum() / m.keep.sum()) for n, m in scored.items()}
    binary = {"act": hp.act, "ternary": hp.keep < 1.0, "scale": "layer", "layers": layers, "keep": hp.keep,
              "sign_zero": "+1", "padding": "one" if hp.act == "binary" else "zero", "alpha": alpha,
              "first_layer_act": "float"}
    precision = {f"{n}.weight": 1 for n in layers}
    return Ticket(spec, start, mask, state, precision, {"binary": binary}), scores


def _save(d: Path, spec: ModelSpec, start: dict, mask: Mask, model: nn.Module, metrics: dict, hp: MptHparams,
          seed: int, level: int, binary: dict, final: dict | None = None, precision: dict | None = None) -> None:
    s = summarize(model)
    meta: dict[str, Any] = {
        "finder": "mpt", "digest": hp.digest(), "seed": seed, "level": level, "dataset": hp.data.dataset,
        "parent": None, "metrics": metrics, "layer_density": mask.layer_density(),
        "bits_total": s["bits_total"], "float32_bits_total": s["float32_bits_total"],
        "binary_bits": s["binary_bits"], "binary_float32_bits": s["binary_float32_bits"],
        "bits_per_weight": s["bits_per_weight"], "summary": s["layers"],
    }
    if binary:
        meta["binary"] = binary
    Ticket(spec, start, mask, final if final is not None else model.state_dict(), precision or {}, meta).save(d)


def report_extra(run: Path) -> dict[str, Any]:
    """Bits columns per level (from the first seed's tickets): MPT reports size next to accuracy."""
    out: dict[int, dict] = {}
    for ld in sorted(run.glob("seed-*/level-*")):
        if (ld / TICKET_FILE).is_file():
            meta = load_json(ld / TICKET_FILE)["meta"]
            out.setdefault(_index(ld, "level"), {**{k: meta.get(k) for k in (
                "bits_total", "float32_bits_total", "binary_bits", "binary_float32_bits", "bits_per_weight")},
                "layers": meta.get("summary", [])})
    return {"bits": {str(k): v for k, v in sorted(out.items())}}


def _register() -> None:
    from compress.finders import Finder, register

    register(Finder("mpt", MptHparams, run_seed, "Multi-Prize Tickets: prune and binarize a random net (biprop)",
                    report_extra))


_register()
