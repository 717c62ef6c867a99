"""`binarize`: the latest float ticket -> binary weights (sign x per-channel scale, XNOR-Net), optionally binary
activations, first and last layers float; finetuned with the straight-through estimator. Pruned weights stay
exactly zero, so a pruned ticket becomes ternary {-a, 0, +a} (compress.binarize.finetune).
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.hparams import Hparams, field
from compress.ticket import Ticket
from compress.train import TrainHparams, predict
from pipelines.stages import Stage, register
from pipelines.stages.base import StageContext, StageOutput
from pipelines.stages.measure import agreement, save_predictions, ticket_size_bytes


def _train() -> TrainHparams:
    return TrainHparams(optimizer="adam", lr=1e-3, epochs=5, batch_size=64, schedule="cosine")


@dataclass(frozen=True)
class BinarizeStageHparams(Hparams):
    act: str = "float"      # binary: sign activations into binary layers (MPT-1/1 style); float: 1-bit weights only
    scale: str = "channel"  # channel (XNOR-Net), layer, none
    layers: str = "inner"   # inner (first and last stay float), all, or comma-separated layer names
    train: TrainHparams = field(default_factory=_train)

    def validate(self) -> None:
        from compress.binarize.finetune import BinarizeHparams

        BinarizeHparams(act=self.act, scale=self.scale, layers=self.layers)  # same checks, same words


def run(ctx: StageContext) -> StageOutput:
    from compress.binarize.finetune import BinarizeHparams
    from compress.binarize.finetune import run as binarize

    hp: BinarizeStageHparams = ctx.hp
    bhp = BinarizeHparams(act=hp.act, scale=hp.scale, layers=hp.layers, train=hp.train,
                          dataset=ctx.settings.dataset, data_root=ctx.settings.data_root)
    rep = binarize(ctx.artifact("ticket"), bhp, out=ctx.dir / "ticket", seed=ctx.settings.seed)
    ticket = Ticket.load(ctx.dir / "ticket")
    top1 = predict(ticket.model("final"), ctx.data().x_test).argmax(1)
    return StageOutput(
        metrics={"test_acc": rep["test_acc"], "density": ticket.density, "size_bytes": ticket_size_bytes(ticket),
                 "bits_per_weight": rep.get("bits_per_weight"), "agreement": agreement(ctx, top1),
                 "before_finetune_test_acc": rep["before_finetune_test_acc"]},
        artifacts={"ticket": ctx.dir / "ticket", "model": ctx.dir / "ticket", "binary_ticket": ctx.dir / "ticket",
                   "predictions": save_predictions(ctx.dir, top1)},
        notes=[f"binary {hp.layers} layers, {hp.act} activations{', ternary' if rep.get('ternary') else ''}"],
    )


register(Stage(
    kind="binarize", hparams=BinarizeStageHparams, run=run,
    description="Binarize the latest float ticket (1-bit weights, optional binary activations) and finetune it",
    needs=("ticket",), produces=("ticket", "model", "binary_ticket", "predictions"),
    metrics=("test_acc", "density", "size_bytes", "bits_per_weight", "agreement", "before_finetune_test_acc"),
))
