"""`finetune`: train the latest ticket further, or prune a trained model one-shot (e.g. 2:4) and retrain it.

- `selection = ""` (default): continue training the ticket's trained weights under its mask (a short, low
  learning-rate finetune); pruned weights stay exactly zero (compress.train).
- `selection = "2:4"` (or any selection): `compress.finetune` prunes the trained weights one-shot by magnitude
  and retrains from them with the given schedule (NVIDIA ASP's recipe, Mishra et al., 2021), with controls.
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.finders.hparams import ControlHparams
from compress.hparams import Hparams, check_range, field
from compress.pruning import PruneHparams
from compress.ticket import Ticket, resolve
from compress.train import TrainHparams, predict, train
from pipelines.stages import Stage, register
from pipelines.stages.base import StageContext, StageOutput
from pipelines.stages.measure import agreement, save_predictions, ticket_size_bytes


@dataclass(frozen=True)
class FinetuneStageHparams(Hparams):
    selection: str = ""
    sparsity: float = 0.5  # fraction removed by a non-N:M selection
    train: TrainHparams = field(default_factory=lambda: TrainHparams(epochs=3.0, lr=1e-4))
    prune: PruneHparams = field(default_factory=PruneHparams)
    controls: ControlHparams = field(default_factory=lambda: ControlHparams(controls=()))

    def validate(self) -> None:
        check_range("sparsity", self.sparsity, 0.0, 1.0, hi_open=True)
        if ":" in self.selection:
            from compress.sparsity import nm

            nm.parse(self.selection)


def _continue(ctx: StageContext, src: Ticket) -> Ticket:
    data = ctx.data()
    model = src.model("final")
    r = train(model, data, ctx.hp.train, mask=src.mask, seed=ctx.settings.seed,
              on_eval=ctx.progress.train_hook("finetune"))
    return Ticket(src.spec, src.init, src.mask, model.state_dict(), dict(src.precision), meta={
        **src.meta, "finder": "finetune", "parent": str(src.meta.get("level")), "metrics": r.metrics()})


def _prune_retrain(ctx: StageContext, source) -> Ticket:
    from compress.finetune import FinetuneHparams, finetune

    hp: FinetuneStageHparams = ctx.hp
    fhp = FinetuneHparams(model=ctx.model_hparams(), data=ctx.data_hparams(), train=hp.train, prune=hp.prune,
                          controls=hp.controls, source=str(source.resolve()), selection=hp.selection,
                          sparsity=hp.sparsity)
    ctx.progress.message(f"one-shot {hp.selection} pruning of the trained weights, then retraining")
    report = finetune(fhp, ctx.dir / "search")
    return Ticket.load(resolve(report["run_dir"], level=1, seed=int(report["seeds"][0])))


def run(ctx: StageContext) -> StageOutput:
    hp: FinetuneStageHparams = ctx.hp
    source = ctx.artifact("model")
    src = Ticket.load(source)
    ticket = _prune_retrain(ctx, source) if hp.selection else _continue(ctx, src)
    out_dir = ticket.save(ctx.dir / "ticket")
    top1 = predict(ticket.model("final"), ctx.data().x_test).argmax(1)
    return StageOutput(
        metrics={"test_acc": ticket.meta["metrics"]["test_acc"], "density": ticket.density,
                 "size_bytes": ticket_size_bytes(ticket), "agreement": agreement(ctx, top1),
                 "source_test_acc": src.meta.get("metrics", {}).get("test_acc")},
        artifacts={"ticket": out_dir, "model": out_dir, "predictions": save_predictions(ctx.dir, top1)},
        notes=[f"{hp.selection} one-shot prune + retrain" if hp.selection else "continued training under the mask"],
    )


register(Stage(
    kind="finetune", hparams=FinetuneStageHparams, run=run,
    description="Finetune the latest ticket, or prune a trained model one-shot (e.g. 2:4, ASP) and retrain",
    needs=("model",), produces=("ticket", "model", "predictions"),
    metrics=("test_acc", "density", "size_bytes", "agreement", "source_test_acc"),
))
