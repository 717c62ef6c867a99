"""`imp`: find a lottery ticket with Iterative Magnitude Pruning (Frankle & Carbin, ICLR 2019).

Runs `compress.finders.find("imp", ...)` inside the stage directory (so a killed search resumes at its
last finished level) and passes on the chosen level's ticket: the finder's selected level (the sparsest
winning one, else the sparsest within tolerance of dense) or the level the spec names.
"""

from __future__ import annotations

from dataclasses import dataclass

from compress import finders
from compress.errors import UsageError
from compress.finders.hparams import ControlHparams
from compress.finders.imp import REWINDS
from compress.finders.rundir import level_dir, run_dir, seed_dir
from compress.hparams import Hparams, field
from compress.io import save_tensors
from compress.pruning import PruneHparams
from compress.ticket import TICKET_FILE, Ticket, resolve
from compress.train import TrainHparams, predict
from pipelines.stages import Stage, register
from pipelines.stages.base import StageContext, StageOutput
from pipelines.stages.measure import agreement, recommended_train, save_predictions, ticket_size_bytes


@dataclass(frozen=True)
class ImpStageHparams(Hparams):
    rounds: int = 4
    rewind: str = "init"
    rewind_iter: int = 0
    level: int = -1  # -1: the finder's selected level
    train: TrainHparams = field(default_factory=TrainHparams)
    prune: PruneHparams = field(default_factory=PruneHparams)
    controls: ControlHparams = field(default_factory=ControlHparams)

    def validate(self) -> None:
        if self.rounds < 1:
            raise UsageError(f"rounds must be >= 1, got {self.rounds}.")
        if self.rewind not in REWINDS:
            raise UsageError(f"rewind must be one of {', '.join(REWINDS)}, got '{self.rewind}'.")
        if not -1 <= self.level <= self.rounds:
            raise UsageError(f"level must be -1 (the selected level) or 0..rounds ({self.rounds}), got {self.level}.")


def run(ctx: StageContext) -> StageOutput:
    hp: ImpStageHparams = ctx.hp
    find_hp = finders.ImpHparams(model=ctx.model_hparams(), data=ctx.data_hparams(), train=hp.train,
                                 prune=hp.prune, controls=hp.controls, rounds=hp.rounds, rewind=hp.rewind,
                                 rewind_iter=hp.rewind_iter)
    seed = ctx.settings.seed
    ctx.progress.message(f"IMP: {hp.rounds} rounds, each trains the ticket and {len(hp.controls.controls)} control(s)")
    _reuse_dense(ctx, find_hp, seed)
    report = finders.find("imp", find_hp, [seed], ctx.dir / "search")
    level = report["selected_level"] if hp.level == -1 else hp.level
    ticket_dir = resolve(report["run_dir"], level=level, seed=seed)
    ticket = Ticket.load(ticket_dir)
    data = ctx.data()
    top1 = predict(ticket.model("final"), data.x_test).argmax(1)
    row = next(r for r in report["levels"] if r["level"] == level)
    metrics = {"test_acc": ticket.meta["metrics"]["test_acc"], "density": ticket.density,
               "size_bytes": ticket_size_bytes(ticket), "agreement": agreement(ctx, top1), "level": level,
               "dense_test_acc": report["dense_test_acc"], "winning": int(row["verdict"] == "winning")}
    for kind in hp.controls.controls:
        metrics[f"{kind}_test_acc"] = row.get(f"{kind}_test_acc_mean")
    run_dir = ticket_dir.parent.parent
    return StageOutput(
        metrics=metrics,
        artifacts={"ticket": ticket_dir, "model": ticket_dir, "predictions": save_predictions(ctx.dir, top1),
                   "search_report": run_dir / "report.json", "search_plot": run_dir / "accuracy_vs_density.png"},
        notes=[f"level {level} ({row['verdict']}) of {hp.rounds}"],
        extra={"levels": report["levels"], "controls": list(hp.controls.controls),
               "dense_test_acc": report["dense_test_acc"]},
    )


def _reuse_dense(ctx: StageContext, hp: finders.ImpHparams, seed: int) -> None:
    """Start IMP from the pipeline's dense baseline instead of training the same network twice.

    IMP's level 0 is exactly the dense run (same init seed, data order and training settings), so when the
    settings match it is copied in as level 0; with `rewind = "iter"` the rewind point needs a snapshot of that
    run, so IMP trains its own level 0.
    """
    base = ctx.baseline
    if base is None or base.kind != "dense" or "model" not in base.artifacts or hp.rewind == "iter":
        return
    dense = Ticket.load(ctx.artifact("model", base))
    if base.extra.get("train") != hp.train.to_dict() or dense.meta.get("seed") != seed:
        return
    run = run_dir(ctx.dir / "search", "imp", hp)
    level0 = level_dir(run, seed, 0)
    if (level0 / TICKET_FILE).is_file():
        return
    save_tensors(seed_dir(run, seed) / "rewind.safetensors", dense.init)
    Ticket(dense.spec, dense.init, dense.mask, dense.final, meta={
        **dense.meta, "finder": "imp", "digest": hp.digest(), "parent": None, "from_stage": base.name,
        "layer_density": dense.mask.layer_density()}).save(level0)
    ctx.progress.message(f"IMP level 0 is the dense baseline of stage '{base.name}' (same settings): not retrained")


register(Stage(
    kind="imp", hparams=ImpStageHparams, run=run,
    description="Iterative Magnitude Pruning with rewinding and sanity-check controls (LTH)",
    produces=("ticket", "model", "predictions", "search_report"),
    metrics=("test_acc", "density", "size_bytes", "agreement", "level", "dense_test_acc", "winning",
             "reinit_test_acc", "random_test_acc"),
    defaults=recommended_train,
))
