"""`dense`: train the dense baseline every later stage is compared with.

Same initialization seed and data order as IMP's level 0 (compress.finders.imp), so with the same training
settings the baseline is the network IMP starts pruning from. Saves a ticket directory with an all-ones
mask and the test-set top-1 predictions that later stages' `agreement` is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.hparams import Hparams, field
from compress.mask import Mask
from compress.models import build, count
from compress.ticket import Ticket
from compress.train import TrainHparams, predict, train
from pipelines.stages import Stage, register
from pipelines.stages.base import StageContext, StageOutput
from pipelines.stages.measure import recommended_train, save_predictions, ticket_size_bytes


@dataclass(frozen=True)
class DenseHparams(Hparams):
    train: TrainHparams = field(default_factory=TrainHparams)


def run(ctx: StageContext) -> StageOutput:
    data = ctx.data()
    spec = ctx.model_spec()
    seed = ctx.settings.seed
    model = build(spec, seed=seed)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    r = train(model, data, ctx.hp.train, mask=Mask.ones_like(model), seed=seed,
              on_eval=ctx.progress.train_hook("dense training"))
    ticket = Ticket(spec, init, Mask.ones_like(model), model.state_dict(), meta={
        "finder": "dense", "seed": seed, "level": 0, "dataset": data.name, "metrics": r.metrics()})
    model_dir = ticket.save(ctx.dir / "model")
    preds = save_predictions(ctx.dir, predict(model, data.x_test).argmax(1))
    return StageOutput(
        metrics={"test_acc": r.test_acc, "val_acc": r.val_acc, "early_stop_iter": r.early_stop_iter,
                 "density": 1.0, "size_bytes": ticket_size_bytes(ticket), "parameters": count(model)["parameters"],
                 "train_wall_s": round(r.wall_s, 3)},
        artifacts={"model": model_dir, "predictions": preds},
        extra={"train": ctx.hp.train.to_dict()},
    )


register(Stage(
    kind="dense", hparams=DenseHparams, run=run,
    description="Train the dense baseline (same init and data order as IMP level 0)",
    produces=("model", "predictions"),
    metrics=("test_acc", "val_acc", "early_stop_iter", "density", "size_bytes", "parameters", "train_wall_s"),
    baseline=True, defaults=recommended_train,
))
