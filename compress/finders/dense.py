"""`dense` (`lottery train`): train the dense network every later stage is compared with.

Same initialization seed and data order as IMP's level 0 (compress.finders.imp), so with the same training
settings the baseline is the network IMP starts pruning from. Saves a ticket directory with an all-ones
mask and the test-set top-1 predictions that later stages' `agreement` is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.hparams import Hparams, setting
from compress.method import Context, Method, Output
from compress.settings import TrainHparams


@dataclass(frozen=True)
class DenseHparams(Hparams):
    train: TrainHparams = setting(factory=TrainHparams, prefix="", model_defaults=True,
                                  help="How the dense network is trained.")


def run(ctx: Context) -> Output:
    from compress.finders.common import model_spec, ticket_output
    from compress.mask import Mask
    from compress.models import build, count
    from compress.ticket import Ticket
    from compress.train import train

    data = ctx.data()
    spec = model_spec(ctx, data)
    seed = ctx.scope.seed
    model = build(spec, seed=seed)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    r = train(model, data, ctx.settings.train, mask=Mask.ones_like(model), seed=seed,
              on_eval=ctx.progress.train_hook("dense training"))
    ticket = Ticket(spec, init, Mask.ones_like(model), model.state_dict(),
                    meta={"method": "dense", "digest": ctx.settings.digest(), "seed": seed, "level": 0,
                          "dataset": data.name}, metrics=r.metrics())
    ticket_dir = ticket.save(ctx.dir / "ticket")
    out = ticket_output(ctx, ticket_dir, extra={"val_acc": r.val_acc, "early_stop_iter": r.early_stop_iter,
                                                "parameters": count(model)["parameters"],
                                                "train_wall_s": round(r.wall_s, 3)})
    out.metrics["agreement"] = 1.0
    out.details["train"] = ctx.settings.train.to_dict()
    return out


METHOD = Method(
    name="dense", command=("train",), settings=DenseHparams, run=run,
    summary="Train the dense baseline (same init and data order as IMP level 0)",
    doc="Writes a ticket directory (all-ones mask) and the test predictions later stages compare with.",
    produces=("ticket", "model", "predictions"),
    metrics=("test_acc", "val_acc", "early_stop_iter", "density", "storage_bytes", "file_bytes", "agreement",
             "parameters", "train_wall_s"),
    baseline=True,
)
