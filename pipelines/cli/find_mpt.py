"""`lottery find mpt`: Multi-Prize Tickets (Diffenderfer & Kailkhura, ICLR 2021)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipelines.cli import options as o
from pipelines.cli.common import err_console, friendly, out_console, pct, print_json, setup_logging
from pipelines.cli.find import app


def mpt_table(report: dict) -> Table:
    act = "1/1" if report["hparams"]["act"] == "binary" else "1/32"
    t = Table(title=f"mpt: {report['model']} x{report['width']} on {report['dataset']} (seeds "
                    f"{', '.join(map(str, report['seeds']))}; test accuracy %)")
    for col in ("network", "density %", "test acc", "bits/weight", "size bits", "float32 bits"):
        t.add_column(col, justify="right" if col != "network" else "left")
    for r in report["levels"]:
        b = report.get("bits", {}).get(str(r["level"]), {})
        name = "trained float" if r["level"] == 0 else f"MPT-{act} (keep {report['hparams']['keep']})"
        t.add_row(name, f"{100 * r['density']:.2f}", f"{pct(r['test_acc_mean'])} ± {pct(r['test_acc_std'])}",
                  f"{b.get('bits_per_weight') or 0:.3f}", str(b.get("bits_total")), str(b.get("float32_bits_total")))
    t.caption = "MPT weights are random and frozen; the pruned binary ticket is ternary {-a, 0, +a}."
    return t


def layers_table(rows: list[dict], title: str) -> Table:
    """larq-style per-layer summary: precision of weights/activations, params, kept, stored bits."""
    t = Table(title=title)
    for col in ("layer", "kind", "weights", "activations", "params", "kept", "bits"):
        t.add_column(col, justify="left" if col in ("layer", "kind") else "right")
    for r in rows:
        t.add_row(r["layer"], r["kind"], f"{r['weight_bits']}-bit", f"{r['act_bits']}-bit", str(r["params"]),
                  str(r["kept"]), str(r["bits"]))
    return t


@app.command("mpt")
@friendly
def mpt(
    model: o.Model = "conv4",
    dataset: o.DatasetOpt = "mnist5k",
    keep: Annotated[float | None, typer.Option(help="Fraction of weights KEPT, in (0, 1] (default 0.5).")] = None,
    act: Annotated[str | None, typer.Option(help="float (MPT-1/32) or binary (MPT-1/1, sign activations).")] = None,
    selection: Annotated[str | None, typer.Option(help="Top-k per layer (layerwise) or global.")] = None,
    score_init: Annotated[str | None, typer.Option(help="kaiming_uniform, kaiming_normal or uniform.")] = None,
    weight_init: Annotated[str | None, typer.Option(help="kaiming_normal or signed_constant.")] = None,
    bn: Annotated[str | None, typer.Option(help="BatchNorm: affine (learned), plain (no affine) or none.")] = None,
    score_epochs: Annotated[float | None, typer.Option(help="Epochs of score training (default 10).")] = None,
    score_lr: Annotated[float | None, typer.Option(help="Learning rate of the scores (default 0.01, Adam).")] = None,
    baseline: Annotated[bool, typer.Option(help="Train the float net of the same architecture (level 0).")] = True,
    seeds: o.Seeds = 1,
    first_seed: o.FirstSeed = 0,
    out: o.Out = Path("runs"),
    width: o.Width = None,
    data_root: o.DataRoot = None,
    download: o.Download = False,
    lr: o.Lr = None,
    epochs: o.Epochs = None,
    batch_size: o.BatchSize = None,
    set_: o.Set = None,
    as_json: o.Json = False,
    quiet: o.Quiet = False,
) -> None:
    """Multi-Prize Tickets: prune and binarize a random network, never training its weights.

    Learns a score per frozen random weight (edge-popup straight-through gradients); the forward pass keeps
    the top KEEP of the weights, binarized as alpha * sign(w) per layer. Level 0 is the trained float net of
    the same architecture (--lr/--epochs), level 1 the ticket (--score-epochs/--score-lr).
    """
    from compress import finders

    setup_logging(quiet or as_json)
    flags = dict(model=model, dataset=dataset, keep=keep, act=act, selection=selection, score_init=score_init,
                 weight_init=weight_init, bn=bn, width=width, data_root=data_root, download=download, lr=lr,
                 epochs=epochs, batch_size=batch_size, set=set_)
    flags["scores.epochs"], flags["scores.lr"] = score_epochs, score_lr
    if not baseline:
        flags["baseline"] = False
    hp = finders.make_hparams("mpt", o.settings(**flags))
    report = finders.find("mpt", hp, list(range(first_seed, first_seed + seeds)), out)
    if as_json:
        print_json(report)
    else:
        out_console.print(mpt_table(report))
        ticket_bits = report.get("bits", {}).get("1")
        if ticket_bits:
            out_console.print(layers_table(ticket_bits["layers"], "MPT ticket, per layer (seed "
                                           f"{report['seeds'][0]})"))
        err_console.print(f"report: {Path(report['run_dir']) / 'report.json'}", highlight=False)
