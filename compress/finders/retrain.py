"""`retrain` (`lottery retrain INPUT`): train a ticket's mask from its init (rewind) weights, e.g. a pruning-at-init
ticket saved untrained, with the dense reference and the sanity-check controls, like a finder's level.

Layout: `seed-<s>/level-0` (the dense network from the same start weights, trained with the same budget: the
verdicts' reference), `seed-<s>/level-1` (the retrained ticket) and its controls. Training settings are this
method's own defaults (the LTH recipe), not the source run's: set them as for any method.
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.hparams import Hparams, setting
from compress.method import Context, Method, Output
from compress.settings import ControlHparams, TrainHparams


@dataclass(frozen=True)
class RetrainHparams(Hparams):
    reference: bool = setting(True, help="Train the dense network from the same start weights as the reference.")
    train: TrainHparams = setting(factory=TrainHparams, prefix="", model_defaults=True,
                                  help="Training of the ticket, its reference and controls.")
    controls: ControlHparams = setting(factory=ControlHparams, prefix="", help="Sanity-check controls.")


def run(ctx: Context) -> Output:
    from compress.finders.common import finish, level_dir
    from compress.finders.controls import run_controls
    from compress.mask import Mask
    from compress.models import build
    from compress.ticket import TICKET_FILE, Ticket
    from compress.train import train

    hp: RetrainHparams = ctx.settings
    src = Ticket.load(ctx.input("ticket"))
    data = ctx.data()
    seed = ctx.scope.seed
    meta = {"method": "retrain", "digest": hp.digest(), "seed": seed, "dataset": data.name,
            "source_digest": src.meta.get("digest")}
    l0, l1 = level_dir(ctx.dir, seed, 0), level_dir(ctx.dir, seed, 1)
    if hp.reference and not (l0 / TICKET_FILE).is_file():
        model = build(src.spec)
        model.load_state_dict(src.init)
        full = Mask.ones_like(model)
        r = train(model, data, hp.train, mask=full, seed=seed, on_eval=ctx.progress.train_hook("dense reference"))
        Ticket(src.spec, src.init, full, model.state_dict(), meta={**meta, "level": 0, "parent": None},
               metrics=r.metrics()).save(l0)
    if not (l1 / TICKET_FILE).is_file():
        model = src.model("init")
        r = train(model, data, hp.train, mask=src.mask, seed=seed, on_eval=ctx.progress.train_hook("ticket"))
        Ticket(src.spec, src.init, src.mask, model.state_dict(), dict(src.precision),
               {**meta, "level": 1, "parent": "level-0", "layer_density": src.mask.layer_density()},
               r.metrics()).save(l1)
    run_controls(l1, src.spec, src.init, src.mask, data, hp.controls, hp.train, seed, 1)
    return finish(ctx, "retrain", hp.controls, 1)


METHOD = Method(
    name="retrain", command=("retrain",), settings=RetrainHparams, run=run,
    summary="Train a ticket's mask from its init weights, with a dense reference and sanity-check controls",
    doc="For tickets saved untrained (e.g. `lottery find grasp --no-trained`) or to retrain any ticket from its "
        "rewind point with other settings. Verdicts as for IMP.",
    needs=("ticket",), produces=("ticket", "model", "predictions"),
    metrics=("test_acc", "density", "storage_bytes", "file_bytes", "agreement", "level", "dense_test_acc",
             "winning", "reinit_test_acc", "random_test_acc"),
)
