"""`mpt`: a Multi-Prize Ticket (Diffenderfer & Kailkhura, ICLR 2021): prune and binarize a random network by
learning scores over frozen random weights (compress.finders.mpt). `act = "binary"` is MPT-1/1 (binary
weights and activations, what LCE bit-packs best), `act = "float"` MPT-1/32.

The pipeline's dense stage is the float comparison, so the finder's own float level 0 is off by default.
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.finders.mpt import _score_train
from compress.hparams import Hparams, field
from compress.ticket import Ticket, resolve
from compress.train import TrainHparams, predict
from pipelines.stages import Stage, register
from pipelines.stages.base import StageContext, StageOutput
from pipelines.stages.measure import agreement, save_predictions, ticket_size_bytes


@dataclass(frozen=True)
class MptStageHparams(Hparams):
    keep: float = 0.5          # fraction of weights KEPT (biprop's prune_rate)
    act: str = "binary"        # binary: MPT-1/1; float: MPT-1/32
    selection: str = "layerwise"
    bn: str = "affine"
    baseline: bool = False     # the finder's own trained float net at level 0
    scores: TrainHparams = field(default_factory=_score_train)  # the finder's own defaults

    def validate(self) -> None:
        from compress.finders.mpt import MptHparams

        MptHparams(keep=self.keep, act=self.act, selection=self.selection, bn=self.bn)  # same checks, same words


def run(ctx: StageContext) -> StageOutput:
    from compress import finders
    from compress.finders.mpt import MptHparams

    hp: MptStageHparams = ctx.hp
    fhp = MptHparams(model=ctx.model_hparams(), data=ctx.data_hparams(), keep=hp.keep, act=hp.act,
                     selection=hp.selection, bn=hp.bn, baseline=hp.baseline, scores=hp.scores)
    seed = ctx.settings.seed
    ctx.progress.message(f"MPT-1/{'1' if hp.act == 'binary' else '32'}: learning scores, keep {hp.keep:.0%}")
    report = finders.find("mpt", fhp, [seed], ctx.dir / "search")
    ticket_dir = resolve(report["run_dir"], level=1, seed=seed)
    ticket = Ticket.load(ticket_dir)
    top1 = predict(ticket.model("final"), ctx.data().x_test).argmax(1)
    return StageOutput(
        metrics={"test_acc": ticket.meta["metrics"]["test_acc"], "density": ticket.density,
                 "size_bytes": ticket_size_bytes(ticket), "bits_per_weight": ticket.meta.get("bits_per_weight"),
                 "agreement": agreement(ctx, top1)},
        artifacts={"ticket": ticket_dir, "model": ticket_dir, "binary_ticket": ticket_dir,
                   "predictions": save_predictions(ctx.dir, top1)},
        notes=[f"MPT-1/{'1' if hp.act == 'binary' else '32'}, keep {hp.keep}"],
    )


register(Stage(
    kind="mpt", hparams=MptStageHparams, run=run,
    description="Multi-Prize Ticket: prune and binarize a random net by learned scores (biprop)",
    produces=("ticket", "model", "binary_ticket", "predictions"),
    metrics=("test_acc", "density", "size_bytes", "bits_per_weight", "agreement"),
))
