"""`rigl`, `set`, `static` (`lottery find rigl|set|static`): dynamic sparse training (Evci et al., ICML 2020,
"Rigging the Lottery"; Mocanu et al., 2018, SET) and its static-sparse baseline, one sparse training each.

The network starts at the target sparsity with ERK or uniform layer densities and is trained once; RigL grows
by dense-gradient magnitude, SET at random, static never changes its random mask (compress.dst). Layout like the
other finders: `seed-<s>/level-1` the sparse ticket (dense init, final mask, trained weights), `seed-<s>/level-0`
the dense network trained with the same recipe (the verdict's reference; `reference=false` skips it). Long
trainings checkpoint every `checkpoint_every` iterations and resume after a kill to the same result. The report
has the per-layer density after every update, the dropped/grown counts, the mask-change curve (fraction of the
final mask present at each update, also plotted) and training/inference FLOPs relative to dense.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from compress.dst.settings import DstHparams
from compress.hparams import setting
from compress.method import Context, Method, Output

log = logging.getLogger("lottery")
RULES = {"rigl": ("RigL: drop smallest |w|, grow largest dense-gradient |g| (Evci et al., 2020)", "RiglHparams"),
         "set": ("SET: drop smallest |w|, grow at random (Mocanu et al., 2018)", "SetHparams"),
         "static": ("Static sparse: a random ERK/uniform mask that never changes (the DST baseline)", "StaticHparams")}


@dataclass(frozen=True)
class DstFindHparams(DstHparams):
    reference: bool = setting(True, help="Also train the dense network with the same recipe (level 0): the "
                                         "verdict's reference.")
    checkpoint_every: int = setting(500, lo=0, digest=False,
                                    help="Checkpoint the sparse training every N iterations (0: never); a killed "
                                         "run resumes from the last checkpoint to the same result.")


def _settings(rule: str) -> type[DstFindHparams]:
    """The settings of `find <rule>`: DstFindHparams with its rule fixed (no --method flag)."""
    fixed = setting(rule, choices=(rule,), cli=False, help="The growth rule of this command.")
    cls = dataclasses.make_dataclass(RULES[rule][1], [("method", str, fixed)], bases=(DstFindHparams,), frozen=True)
    cls.__module__ = __name__
    return cls


def run_seed(run: Path, hp: DstFindHparams, data: Any, spec: Any, seed: int, ctx: Context) -> None:
    import shutil

    from compress import dst
    from compress.finders.common import level_dir
    from compress.io import save_json
    from compress.mask import Mask
    from compress.models import build
    from compress.ticket import TICKET_FILE, Ticket
    from compress.train import train

    l0, l1 = level_dir(run, seed, 0), level_dir(run, seed, 1)
    if hp.reference and not (l0 / TICKET_FILE).is_file():
        model = build(spec, seed=seed)
        init = {k: v.clone() for k, v in model.state_dict().items()}
        r = train(model, data, hp.train, mask=Mask.ones_like(model), seed=seed,
                  on_eval=ctx.progress.train_hook(f"seed {seed} dense reference"))
        Ticket(spec, init, Mask.ones_like(model), model.state_dict(), meta={
            "method": hp.method, "digest": hp.digest(), "seed": seed, "level": 0, "dataset": data.name,
            "parent": None}, metrics=r.metrics()).save(l0)
    if not (l1 / TICKET_FILE).is_file():
        ckpt = l1.parent / "checkpoints-level-1"
        result = dst.run(spec, data, hp, seed, checkpoint_dir=ckpt if hp.checkpoint_every else None,
                         checkpoint_every=hp.checkpoint_every)
        t = result.ticket
        meta = {"method": hp.method, "digest": hp.digest(), "seed": seed, "level": 1, "dataset": data.name,
                "parent": "level-0" if hp.reference else None, "layer_density": t.mask.layer_density()}
        metrics = {**t.meta["metrics"], "train_flops_ratio": t.meta["train_flops_ratio"],
                   "inference_flops_ratio": t.meta["inference_flops_ratio"]}
        save_json(l1.parent / "history-level-1.json", result.history)
        Ticket(t.spec, t.init, t.mask, t.final, {}, meta, metrics).save(l1)
        shutil.rmtree(ckpt, ignore_errors=True)  # the ticket is written: its checkpoints are done
        log.info("seed %d %s %.0f%% sparse: test_acc %.4f", seed, hp.method, 100 * hp.sparsity,
                 metrics["test_acc"])


def run(ctx: Context, rule: str) -> Output:
    from compress.finders.common import finish, model_spec
    from compress.io import load_json
    from compress.settings import ControlHparams

    hp: DstFindHparams = ctx.settings
    data = ctx.data()
    spec = model_spec(ctx, data)
    for seed in ctx.scope.seed_list():
        run_seed(ctx.dir, hp, data, spec, seed, ctx)
    history = load_json(ctx.dir / f"seed-{ctx.scope.seed}" / "history-level-1.json")
    out = finish(ctx, rule, ControlHparams(controls=()), 1)
    from compress.ticket import Ticket

    ticket = Ticket.load(out.artifacts["ticket"])
    out.metrics.update(train_flops_ratio=ticket.metrics.get("train_flops_ratio"),
                       inference_flops_ratio=ticket.metrics.get("inference_flops_ratio"))
    out.details.update(updates=history["updates"], mask_change=history["mask_change"], flops=history["flops"])
    plot = _mask_change_plot(ctx.dir, history, rule)
    if plot is not None:
        out.artifacts["mask_change_plot"] = plot
    return out


def _mask_change_plot(run: Path, history: dict[str, Any], rule: str) -> Path | None:
    curve = history.get("mask_change", {})
    if not curve.get("iterations"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(curve["iterations"], curve["fraction_of_final_present"], marker=".")
    ax.set_xlabel("iteration")
    ax.set_ylabel("fraction of the final mask present")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{rule}: how the mask converges")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path = run / "mask_change.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


METHODS = [Method(
    name=rule, command=("find", rule), settings=_settings(rule), run=partial(run, rule=rule), summary=summary,
    doc="Sparse from the start at a fixed parameter count: one sparse training instead of IMP's rounds. ERK "
        "layer densities by default; the drop fraction follows a cosine from alpha to 0 at t_end.",
    produces=("ticket", "model", "predictions"),
    metrics=("test_acc", "density", "storage_bytes", "file_bytes", "agreement", "level", "dense_test_acc",
             "winning", "train_flops_ratio", "inference_flops_ratio"),
) for rule, (summary, _) in RULES.items()]
