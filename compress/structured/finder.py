"""The `gfs` method's run (compress.finders.gfs): dense level 0, the GFS ticket as level 1 with its structured
controls beside it, and the summary (verdict over seeds, sizes against the dense network, per-layer tables)."""

from __future__ import annotations

import logging
import statistics
from pathlib import Path
from typing import Any

from torch import nn

from compress.data import Dataset
from compress.finders.common import baseline_dense, level_dir, save_as_level, ticket_output
from compress.io import load_json, save_json
from compress.mask import Mask
from compress.method import Context, Output
from compress.models import ModelSpec, build, count
from compress.settings import TrainHparams
from compress.structured.flops import flops
from compress.structured.gfs import gfs
from compress.structured.l1 import l1
from compress.structured.random_units import random_units
from compress.structured.result import StructuredResult
from compress.structured.settings import GfsSettings, OneShotSettings, SmallDenseSettings
from compress.structured.shrink import widths
from compress.structured.small_dense import small_dense
from compress.structured.verdict import verdict
from compress.ticket import TICKET_FILE, Ticket
from compress.train import train

log = logging.getLogger("lottery")


def control_budget(hp: GfsSettings, layers: int, n_train: int) -> TrainHparams:
    """The finetune of the l1/random controls: as long as GFS finetunes in all (final + one layer_train per layer)."""
    f, lt = hp.finetune, hp.layer_train
    if f.iterations == 0 and lt.iterations == 0:
        return f.replace(epochs=f.epochs + layers * lt.epochs)
    return f.replace(iterations=f.total_iterations(n_train) + layers * lt.total_iterations(n_train))


def run_control(kind: str, dense: nn.Module, spec: ModelSpec, data: Dataset, hp: Any, layers: int,
                seed: int) -> StructuredResult:
    """One structured control of the GFS ticket (see compress.finders.gfs)."""
    if kind == "small_dense":
        return small_dense(spec, data, SmallDenseSettings(keep=hp.keep, train=hp.train), seed)
    settings = OneShotSettings(keep=hp.keep, layers=hp.layers, finetune=control_budget(hp, layers, len(data.y_train)))
    return (l1 if kind == "l1" else random_units)(dense, spec, data, settings, seed)


def check(hp: Any, spec: ModelSpec, data: Dataset) -> None:
    """Refuse settings the model cannot take before anything is trained: layers without gateable units, a
    small_dense control for a model whose width multiplier does not give GFS's widths."""
    from compress.structured.result import chosen_groups
    from compress.structured.small_dense import small_spec

    chosen_groups(build(spec, seed=0), data.input_shape, hp.layers, need_gate=True)
    if "small_dense" in hp.controls.controls:
        small_spec(spec, data, hp.keep, hp.layers)


def _dense_level(ctx: Context, hp: Any, data: Dataset, spec: ModelSpec, seed: int) -> None:
    l0 = level_dir(ctx.dir, seed, 0)
    if (l0 / TICKET_FILE).is_file():
        return
    meta = {"method": "gfs", "digest": hp.digest(), "seed": seed, "level": 0, "dataset": data.name, "parent": None}
    base = baseline_dense(ctx, seed, hp.train, spec)
    if base is not None:
        save_as_level(base, l0, meta)
        ctx.progress.message(f"GFS level 0 is the dense baseline of stage '{ctx.baseline.name}' (same settings): "
                             "not retrained")
        return
    model = build(spec, seed=seed)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    r = train(model, data, hp.train, mask=Mask.ones_like(model), seed=seed,
              on_eval=ctx.progress.train_hook(f"seed {seed} dense"))
    Ticket(spec, init, Mask.ones_like(model), model.state_dict(), meta=meta, metrics=r.metrics()).save(l0)


def run_seed(ctx: Context, hp: Any, data: Dataset, spec: ModelSpec, seed: int) -> None:
    """Run (or resume) one seed: the dense net, the GFS ticket, each missing control."""
    _dense_level(ctx, hp, data, spec, seed)
    dense = Ticket.load(level_dir(ctx.dir, seed, 0)).model("final")
    l1_dir = level_dir(ctx.dir, seed, 1)
    if not (l1_dir / TICKET_FILE).is_file():
        res = gfs(dense, spec, data, hp, seed)
        res.ticket({"digest": hp.digest(), "seed": seed, "level": 1, "dataset": data.name,
                    "parent": "level-0"}).save(l1_dir)
        log.info("seed %d GFS: widths %s, test_acc %.4f (%.1f s)", seed, res.metrics["widths"],
                 res.metrics["test_acc"], res.metrics["wall_s"])
    layers = len(Ticket.load(l1_dir).meta["keep"])
    shape = data.input_shape
    for kind in hp.controls.controls:
        path = l1_dir / f"control-{kind}.json"
        if path.is_file():
            continue
        ctx.progress.message(f"seed {seed}: {kind} control")
        res = run_control(kind, dense, spec, data, hp, layers, seed)
        save_json(path, {"kind": kind, **res.metrics, "parameters": count(res.model)["parameters"],
                         "flops": flops(res.model, shape).total})
        log.info("  seed %d %-11s control: test_acc %.4f (%.1f s)", seed, kind, res.metrics["test_acc"],
                 res.metrics["wall_s"])


def _accs(run: Path, seeds: list[int], level: int, kind: str | None = None) -> list[float]:
    out = []
    for s in seeds:
        d = level_dir(run, s, level)
        out.append(load_json(d / f"control-{kind}.json")["test_acc"] if kind else Ticket.load(d).metrics["test_acc"])
    return out


def summarize(ctx: Context, hp: Any, data: Dataset) -> Output:
    """The verdict over seeds, sizes of the scope seed's ticket against its dense net, the per-layer tables."""
    seeds, run, shape = ctx.scope.seed_list(), ctx.dir, data.input_shape
    kinds = list(hp.controls.controls)
    gfs_accs, dense_accs = _accs(run, seeds, 1), _accs(run, seeds, 0)
    controls = {k: _accs(run, seeds, 1, k) for k in kinds}
    v = verdict(gfs_accs, controls, hp.controls.margin) if kinds else None
    ticket_dir = level_dir(run, ctx.scope.seed, 1)
    small, large = Ticket.load(ticket_dir).model(), Ticket.load(level_dir(run, ctx.scope.seed, 0)).model()
    fs, fl = flops(small, shape), flops(large, shape)
    ps, pl = count(small)["parameters"], count(large)["parameters"]
    extra: dict[str, Any] = {"dense_test_acc": statistics.fmean(dense_accs), "params_ratio": ps / pl,
                             "flops_ratio": fs.ratio_to(fl), "parameters": ps, "flops": fs.total,
                             "winning": None if v is None else v["winning"],
                             "gfs_wall_s": Ticket.load(ticket_dir).metrics.get("wall_s")}
    table = []
    for k in kinds:
        extra[f"{k}_test_acc"] = statistics.fmean(controls[k])
        rec = load_json(level_dir(run, ctx.scope.seed, 1) / f"control-{k}.json")
        table.append({"kind": k, "test_acc_mean": extra[f"{k}_test_acc"], "test_acc_per_seed": controls[k],
                      "parameters": rec["parameters"], "flops_ratio": rec["flops"] / fl.total, **v["controls"][k]})
    wide, narrow = widths(large, shape), widths(small, shape)
    details = {
        "test_acc_mean": statistics.fmean(gfs_accs), "test_acc_per_seed": gfs_accs, "dense_test_acc_per_seed":
        dense_accs, "seeds": seeds, "controls": table, "margin": hp.controls.margin,
        "lost_to": [] if v is None else v["lost_to"],
        "widths": {g: {"dense": n, "kept": narrow.get(g, n)} for g, n in wide.items()},
        "flops_per_layer": {n: {"dense": f, "kept": fs.per_layer.get(n, 0)} for n, f in fl.per_layer.items()},
        "selection": Ticket.load(ticket_dir).metrics.get("selection", []),
    }
    if v is None:
        note = "no controls: no verdict"
    else:
        note = "winning: beats " + ", ".join(kinds) if v["winning"] else "not winning: lost to " + ", ".join(
            v["lost_to"])
    notes = [f"{note} ({len(seeds)} seed(s)); {100 * extra['params_ratio']:.1f}% of the parameters, "
             f"{100 * extra['flops_ratio']:.1f}% of the FLOPs"]
    return ticket_output(ctx, ticket_dir, extra=extra, notes=notes, details=details)


__all__ = ["check", "control_budget", "run_control", "run_seed", "summarize"]
