"""What every ticket finder shares once its seeds have run: the levels table with verdicts, the plot, the
chosen ticket and its record (measured once, here). Finder methods call `finish` at the end of `run`.

Run layout inside a finder's stage folder: `seed-<s>/level-<L>/` ticket directories (level 0 = the dense
reference when the finder trains one), `control-<kind>.json` beside each level's ticket, `levels.json`
and `accuracy_vs_density.png` at the top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compress.data import Dataset
from compress.errors import RunDirError
from compress.io import save_json
from compress.measure import save_predictions, ticket_metrics
from compress.method import Context, Output
from compress.models import ModelSpec, build, check_input
from compress.settings import ControlHparams
from compress.ticket import TICKET_FILE, Ticket


def model_spec(ctx: Context, data: Dataset) -> ModelSpec:
    """The scope's architecture sized to the dataset, checked by running one batch through it."""
    sc = ctx.scope
    spec = ModelSpec(sc.model, data.input_shape, data.num_classes, sc.width, sc.init)
    check_input(build(spec, seed=0), data.input_shape, data.num_classes, sc.model)
    return spec


def level_dir(run: Path, seed: int, level: int) -> Path:
    return run / f"seed-{seed}" / f"level-{level}"


def baseline_predictions(ctx: Context) -> Path | None:
    return None if ctx.baseline is None else ctx.baseline.artifacts.get("predictions")


def ticket_output(ctx: Context, ticket_dir: Path, kinds: tuple[str, ...] = ("ticket", "model", "predictions"),
                  extra: dict[str, Any] | None = None, notes: list[str] | None = None,
                  details: dict[str, Any] | None = None) -> Output:
    """The record of one written ticket: its metrics (measured once), predictions for agreement, artifacts."""
    from compress.train import predict

    ticket = Ticket.load(ticket_dir)
    top1 = predict(ticket.model("final"), ctx.data().x_test).argmax(1)
    preds = save_predictions(ctx.dir, top1)
    metrics = {**ticket_metrics(ticket, ticket_dir, top1, baseline_predictions(ctx)), **(extra or {})}
    artifacts = {k: (preds if k == "predictions" else ticket_dir) for k in kinds}
    return Output(metrics, artifacts, list(notes or []), dict(details or {}))


def finish(ctx: Context, method: str, controls: ControlHparams, level: int = -1,
           kinds: tuple[str, ...] = ("ticket", "model", "predictions"), extra: dict[str, Any] | None = None) -> Output:
    """Verdicts over every seed and level, the plot, and the chosen level's ticket as the stage's output.

    `level` -1 takes the selected level (the sparsest winning one, else the sparsest within tolerance of dense).
    """
    from compress.report.levels import collect
    from compress.report.plot import accuracy_vs_density

    run = ctx.dir
    body = collect(run, controls)
    save_json(run / "levels.json", body)
    if body["levels"]:
        accuracy_vs_density([{"label": f"{method} ticket", "levels": body["levels"],
                              "controls": list(controls.controls)}], run / "accuracy_vs_density.png",
                            f"{method}: {ctx.scope.model} on {ctx.scope.dataset} ({ctx.scope.seeds} seed(s))",
                            body["dense_test_acc"])
    chosen = body["selected_level"] if level == -1 else level
    ticket_dir = level_dir(run, ctx.scope.seed, chosen)
    if not (ticket_dir / TICKET_FILE).is_file():
        have = sorted(r["level"] for r in body["levels"])
        raise RunDirError(f"level {chosen} of seed {ctx.scope.seed} has no finished ticket in {run}; finished levels: "
                          f"{', '.join(map(str, have)) or 'none'}.")
    row = next((r for r in body["levels"] if r["level"] == chosen), {})
    metrics: dict[str, Any] = {"level": chosen, "dense_test_acc": body["dense_test_acc"],
                               "winning": row.get("verdict") == "winning", **(extra or {})}
    for kind in controls.controls:
        metrics[f"{kind}_test_acc"] = row.get(f"{kind}_test_acc_mean")
    details = {**body, "controls": list(controls.controls), "seeds": ctx.scope.seed_list(),
               "tolerance": controls.tolerance, "margin": controls.margin}
    last = max((r["level"] for r in body["levels"]), default=0)
    note = f"level {chosen} ({row.get('verdict', 'untrained')}) of {last}"
    out = ticket_output(ctx, ticket_dir, kinds, metrics, [note], details)
    if (run / "accuracy_vs_density.png").is_file():
        out.artifacts["plot"] = run / "accuracy_vs_density.png"
    return out


def baseline_dense(ctx: Context, seed: int, train: Any, spec: ModelSpec) -> Ticket | None:
    """The pipeline's dense baseline when it is exactly the network a finder would train as its level 0 (method
    `dense`, the same training settings, seed and architecture), else None: then it is not trained twice."""
    base = ctx.baseline
    if base is None or base.method != "dense" or "model" not in base.artifacts:
        return None
    if base.details.get("train") != train.to_dict():
        return None
    dense = Ticket.load(base.artifacts["model"])
    if dense.meta.get("seed") != seed or dense.spec.to_dict() != spec.to_dict():
        return None
    return dense


def save_as_level(src: Ticket, directory: Path, meta: dict[str, Any]) -> Path:
    """Write `src` (a finished, trained ticket from another stage) as a level of this run, with this run's meta."""
    return Ticket(src.spec, src.init, src.mask, src.final, dict(src.precision), {**src.meta, **meta},
                  dict(src.metrics)).save(directory)


def input_ticket(ctx: Context) -> Path | None:
    """The ticket a finder was given to start from (a pipeline's earlier ticket, or an explicit input), if any."""
    return next((ctx.inputs[k] for k in ("ticket", "model") if k in ctx.inputs), None)
