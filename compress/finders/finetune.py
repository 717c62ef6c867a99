"""`finetune` (`lottery finetune INPUT`): continue training a trained ticket's weights under its mask, or prune
them one-shot first and retrain from them.

- `selection = ""` (default): a short, low learning-rate finetune of the trained weights; pruned weights stay
  exactly zero (compress.train).
- `selection = "2:4"` (or layerwise/global/erk removing `rate` of the kept weights): the trained weights are pruned
  one-shot by
  magnitude and retrained from the trained weights (NVIDIA ASP's recipe, Mishra et al., 2021: for 2:4, retrain
  with the original schedule: set train.epochs/lr to it).
Optional sanity-check controls (reinit, random mask) train beside it with the same budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.hparams import Hparams, setting
from compress.method import Context, Method, Output
from compress.settings import ControlHparams, PruneHparams, TrainHparams


def _short() -> TrainHparams:
    return TrainHparams(epochs=3.0, lr=1e-4)


@dataclass(frozen=True)
class FinetuneHparams(Hparams):
    train: TrainHparams = setting(factory=_short, prefix="", help="The finetuning run.")
    prune: PruneHparams = setting(factory=lambda: PruneHparams(selection="", rate=0.5, output_rate_factor=1.0),
                                  prefix="", help="One-shot magnitude pruning before finetuning: selection (empty: "
                                                  "keep the ticket's mask; 2:4; layerwise...), rate removed, exclude.")
    controls: ControlHparams = setting(factory=lambda: ControlHparams(controls=()), prefix="",
                                       help="Sanity-check controls (none by default).")


def run(ctx: Context) -> Output:
    from compress import scoring
    from compress.errors import UsageError
    from compress.finders.common import level_dir, ticket_output
    from compress.finders.controls import run_controls
    from compress.pruning import layer_fractions, prune
    from compress.ticket import TICKET_FILE, Ticket
    from compress.train import train

    hp: FinetuneHparams = ctx.settings
    src_dir = ctx.input("model")
    src = Ticket.load(src_dir)
    if src.final is None:
        raise UsageError(f"{src_dir} is an untrained ticket: finetuning continues from trained weights. Train it "
                         "first (`lottery retrain`).")
    data = ctx.data()
    seed = ctx.scope.seed
    out_dir = level_dir(ctx.dir, seed, 1)
    if not (out_dir / TICKET_FILE).is_file():
        trained = src.model("final")
        mask = src.mask
        if hp.prune.selection:
            fractions = layer_fractions(trained, hp.prune)
            mask = prune(trained, src.mask, scoring.get("magnitude")(trained), fractions, hp.prune.selection,
                         input_shape=src.spec.input_shape, **hp.prune.options())
            mask.apply(trained)
        r = train(trained, data, hp.train, mask=mask, seed=seed, on_eval=ctx.progress.train_hook("finetune"))
        Ticket(src.spec, src.final, mask, trained.state_dict(), dict(src.precision), {
            **{k: v for k, v in src.meta.items() if k not in ("digest", "method", "level", "parent")},
            "method": "finetune", "digest": hp.digest(), "seed": seed, "level": 1, "dataset": data.name,
            "selection": hp.prune.selection, "parent_digest": src.meta.get("digest"),
            "layer_density": mask.layer_density()}, r.metrics()).save(out_dir)
    ticket = Ticket.load(out_dir)
    controls = run_controls(out_dir, src.spec, ticket.init, ticket.mask, data, hp.controls, hp.train, seed, 1)
    extra = {"source_test_acc": src.metrics.get("test_acc"),
             **{f"{k}_test_acc": v["test_acc"] for k, v in controls.items()}}
    kinds = ("ticket", "model", "predictions") + (("binary_ticket",) if src.meta.get("binary") else ())
    note = (f"{hp.prune.selection} one-shot prune + retrain" if hp.prune.selection
            else "continued training under the mask")
    return ticket_output(ctx, out_dir, kinds, extra, [note])


METHOD = Method(
    name="finetune", command=("finetune",), settings=FinetuneHparams, run=run,
    summary="Continue training a ticket's trained weights, or prune them one-shot (e.g. 2:4, ASP) and retrain",
    needs=("model",), produces=("ticket", "model", "predictions"),
    metrics=("test_acc", "source_test_acc", "density", "storage_bytes", "file_bytes", "agreement",
             "reinit_test_acc", "random_test_acc"),
)
