"""`mpt` (`lottery find mpt`): Multi-Prize Tickets (Diffenderfer & Kailkhura, ICLR 2021; biprop): prune and
binarize a random network.

Per seed: level 0 (with `baseline`) trains the float network of the same architecture (the comparison); level 1
freezes the random weights, learns one score per weight (edge-popup straight-through gradients) and keeps the
top scored weights (through compress.selection: deterministic ties; layerwise, global, erk or N:M), binarized as
alpha * sign(w) (alpha = mean |w| over the kept weights of a layer). `act="binary"` is MPT-1/1 (sign
activations, what LCE bit-packs), `act="float"` MPT-1/32. The ticket is saved with BinaryConv2d/BinaryLinear
layers (keep = the selected mask, scale "layer"), its scores beside it in scores.safetensors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from compress.hparams import Hparams, setting
from compress.method import Context, Method, Output
from compress.settings import ControlHparams, TrainHparams

log = logging.getLogger("lottery")
ACTS = ("binary", "float")
WEIGHT_INITS = ("kaiming_normal", "signed_constant")
SCORE_INITS = ("kaiming_uniform", "kaiming_normal", "uniform")
BNS = ("affine", "plain", "none")


def _score_train() -> TrainHparams:
    return TrainHparams(optimizer="adam", lr=0.01, epochs=10, batch_size=64, schedule="cosine")


@dataclass(frozen=True)
class MptHparams(Hparams):
    keep: float = setting(0.5, lo=0.0, hi=1.0, lo_open=True, help="Fraction of weights KEPT (biprop's prune_rate).")
    act: str = setting("binary", choices=ACTS, help="binary: MPT-1/1 (binary activations, bit-packed by LCE); "
                                                    "float: MPT-1/32.")
    selection: str = setting("layerwise", help="How scores become the kept set: layerwise, global, erk, or an N:M "
                                               "pattern such as 2:4 (which fixes the density).")
    score_init: str = setting("kaiming_uniform", choices=SCORE_INITS, help="Initialization of the scores.")
    weight_init: str = setting("kaiming_normal", choices=WEIGHT_INITS, help="The frozen random weights.")
    bn: str = setting("affine", choices=BNS, help="BatchNorm after every hidden layer: learned affine, plain, or "
                                                  "none (models with their own BatchNorm need none).")
    baseline: bool = setting(True, help="Level 0: also train the float net of the same architecture to compare.")
    scores: TrainHparams = setting(factory=_score_train, prefix="", help="Training of the scores (and BN affine).")
    baseline_train: TrainHparams = setting(factory=TrainHparams, prefix="baseline-", model_defaults=True,
                                           help="Training of the level-0 float comparison.")
    controls: ControlHparams = setting(factory=lambda: ControlHparams(controls=()), prefix="",
                                       help="Sanity-check controls (none by default: the weights are random).")

    def validate(self) -> None:
        from compress.settings import PruneHparams

        PruneHparams(selection=self.selection)  # the same words for an unknown selection


def base_spec(spec, hp: MptHparams):
    """The float architecture (with BatchNorm when asked): level 0 trains it, level 1 scores it."""
    from dataclasses import replace

    transforms = [{"name": "batchnorm", "affine": hp.bn == "affine"}] if hp.bn != "none" else []
    return replace(spec, extra={**spec.extra, "transforms": [*spec.extra.get("transforms", []), *transforms]})


def init_weights(model, how: str, seed: int):
    """Kaiming normal (fan_in, ReLU gain) or its signed-constant variant (Ramanujan et al., 2020)."""
    import math

    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                std = math.sqrt(2.0 / m.weight[0].numel())
                w = torch.randn(m.weight.shape, generator=g) * std
                m.weight.copy_(w.sign() * std if how == "signed_constant" else w)
                if m.bias is not None:
                    m.bias.zero_()
    return model


def run_seed(run: Path, hp: MptHparams, data, spec, seed: int) -> None:
    """Level 0: trained float net; level 1: the Multi-Prize Ticket. Finished levels are skipped."""
    import copy

    import torch

    from compress.binarize.scored import scored_model
    from compress.binarize.transform import all_layers
    from compress.finders.common import level_dir
    from compress.io import save_tensors
    from compress.mask import Mask
    from compress.models import build
    from compress.ticket import TICKET_FILE, Ticket
    from compress.train import evaluate, train

    base = base_spec(spec, hp)
    random_net = init_weights(build(base, seed=seed), hp.weight_init, seed)
    init = {k: v.clone() for k, v in random_net.state_dict().items()}
    meta = {"method": "mpt", "digest": hp.digest(), "seed": seed, "dataset": data.name, "parent": None}
    l0 = level_dir(run, seed, 0)
    if hp.baseline and not (l0 / TICKET_FILE).is_file():
        model = copy.deepcopy(random_net)
        r = train(model, data, hp.baseline_train, seed=seed)
        Ticket(base, init, Mask.ones_like(model), model.state_dict(), meta={**meta, "level": 0},
               metrics=r.metrics()).save(l0)
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
    loss, acc = evaluate(ticket.model("final"), data.x_test, data.y_test)
    ticket.meta.update({**meta, "level": 1})
    ticket.metrics = {**r.metrics(), "test_acc": acc, "test_loss": loss}
    save_tensors(l1 / "scores.safetensors", scores)
    ticket.save(l1)
    log.info("seed %d level 1 (MPT-1/%s, keep %.2f): test_acc %.4f (%.1f s)", seed,
             "1" if hp.act == "binary" else "32", hp.keep, acc, r.wall_s)


def to_ticket(search, init: dict, base, hp: MptHparams, layers: list[str]):
    """The searched network as a Ticket of plain binary layers (keep = the selected mask, scale = layer)."""
    from dataclasses import replace

    from compress.binarize.scored import scored_layers, update_masks
    from compress.binarize.summary import summarize
    from compress.mask import Mask
    from compress.ticket import Ticket

    update_masks(search, hp.keep, hp.selection)
    scored = scored_layers(search)
    scores = {f"{n}.scores": m.scores.detach().clone() for n, m in scored.items()}
    state = {k: v.detach().clone() for k, v in search.state_dict().items() if not k.endswith(".scores")}
    mask = Mask({f"{n}.weight": m.keep.clone() for n, m in scored.items()})
    t = {"name": "binarize", "layers": layers, "act": hp.act, "scale": "layer"}
    spec = replace(base, extra={**base.extra, "transforms": [*base.extra.get("transforms", []), t]})
    start = {**init, **{f"{n}.keep": m.keep.clone() for n, m in scored.items()}}
    alpha = {n: float((m.weight.abs() * m.keep).sum() / m.keep.sum()) for n, m in scored.items()}
    binary = {"act": hp.act, "ternary": hp.keep < 1.0, "scale": "layer", "layers": layers, "keep": hp.keep,
              "sign_zero": "+1", "padding": "one" if hp.act == "binary" else "zero", "alpha": alpha,
              "first_layer_act": "float"}
    ticket = Ticket(spec, start, mask, state, {f"{n}.weight": 1 for n in layers}, {"binary": binary})
    s = summarize(ticket.model("final"))
    ticket.meta.update({k: s[k] for k in ("bits_total", "float32_bits_total", "binary_bits", "binary_float32_bits",
                                          "bits_per_weight", "binary_layer_bits_per_weight")},
                       layer_density=mask.layer_density(), summary=s["layers"])
    return ticket, scores


def run(ctx: Context) -> Output:
    from compress.finders.common import finish, model_spec

    hp: MptHparams = ctx.settings
    data = ctx.data()
    spec = model_spec(ctx, data)
    ctx.progress.message(f"MPT-1/{'1' if hp.act == 'binary' else '32'}: learning scores, keep {hp.keep:.0%}")
    for seed in ctx.scope.seed_list():
        run_seed(ctx.dir, hp, data, spec, seed)
    out = finish(ctx, "mpt", hp.controls, 1, kinds=("ticket", "model", "binary_ticket", "predictions"))
    from compress.ticket import Ticket

    meta = Ticket.load(out.artifacts["ticket"]).meta
    out.metrics.update(bits_per_weight=meta["bits_per_weight"],
                       binary_layer_bits_per_weight=meta["binary_layer_bits_per_weight"])
    out.details["layers"] = meta["summary"]
    return out


METHOD = Method(
    name="mpt", command=("find", "mpt"), settings=MptHparams, run=run,
    summary="Multi-Prize Ticket: prune and binarize a random net by learned scores (biprop)",
    doc="Learns a score per frozen random weight and keeps the top-scored ones, binarized (MPT-1/1 with binary "
        "activations by default, what LCE bit-packs; --act float for MPT-1/32).",
    produces=("ticket", "model", "binary_ticket", "predictions"),
    metrics=("test_acc", "density", "storage_bytes", "file_bytes", "agreement", "level", "dense_test_acc",
             "winning", "bits_per_weight", "binary_layer_bits_per_weight"),
)
