"""`bip` (`lottery find bip`): BiP, pruning as bi-level optimization (Zhang et al., "Advancing Model Pruning via
Bi-level Optimization", NeurIPS 2022), with BiP's own alternating SGD or the MRBO / VRBO bilevel optimizers
(Yang, Ji & Liang, "Provably Faster Algorithms for Bilevel Optimization", NeurIPS 2021).

Per seed, in the finders' layout: `seed-<s>/level-0` is the dense pretrained network (in a pipeline whose dense
baseline trained the same network, that baseline is copied in, not trained twice); `seed-<s>/level-1` is the
BiP ticket: scores start at |w| of the pretrained weights, the mask is the global top-k of the scores (exactly
round(density x prunable weights) kept after every step), weights and scores are updated by the chosen bilevel
optimizer for `prune_epochs`, then the pruned net is finetuned. Beside it the sanity-check controls (reinit:
the mask from a fresh init; random: a random mask of the same layer densities over the pretrained weights), both
trained with the finetune recipe; verdicts as for IMP. Settings: compress.bip.settings.BipHparams.
"""

from __future__ import annotations

from compress.bip.settings import BipHparams
from compress.method import Context, Method, Output


def run(ctx: Context) -> Output:
    from compress.bip.run import run_seed
    from compress.finders.common import finish, level_dir, model_spec
    from compress.ticket import Ticket

    hp: BipHparams = ctx.settings
    data = ctx.data()
    spec = model_spec(ctx, data)
    ctx.progress.message(f"BiP ({hp.bilevel_optimizer}): density {hp.density:g}, {len(hp.controls.controls)} "
                         "control(s)")
    for seed in ctx.scope.seed_list():
        run_seed(ctx.dir, hp, data, spec, seed, ctx)
    ticket = Ticket.load(level_dir(ctx.dir, ctx.scope.seed, 1))
    extra = {k: ticket.metrics.get(k) for k in ("pruned_test_acc", "prune_wall_s", "bip_wall_s")}
    out = finish(ctx, "bip", hp.controls, 1, extra=extra)
    out.details["prune_history"] = ticket.metrics.get("prune_history", [])
    out.notes.append(f"{hp.bilevel_optimizer} bilevel optimizer, {ticket.mask.kept} of {ticket.mask.total} "
                     "prunable weights kept")
    return out


METHOD = Method(
    name="bip", command=("find", "bip"), settings=BipHparams, run=run,
    summary="BiP: pruning as bilevel optimization (sgd, mrbo or vrbo), one-shot from a pretrained net",
    doc="Pretrains the dense net, then learns a global top-k mask over scores and the weights under it by "
        "bilevel optimization with BiP's closed-form implicit gradient (--bilevel-optimizer sgd: BiP's "
        "alternating SGD; mrbo / vrbo: Yang, Ji & Liang 2021), then finetunes. The mask keeps exactly "
        "round(density x prunable weights). Reinit and random-mask controls and verdicts as for IMP. Re-running "
        "resumes.",
    produces=("ticket", "model", "predictions"),
    metrics=("test_acc", "density", "storage_bytes", "file_bytes", "agreement", "level", "dense_test_acc",
             "winning", "reinit_test_acc", "random_test_acc", "pruned_test_acc", "prune_wall_s", "bip_wall_s"),
)
