"""Options shared by the `lottery find ...` commands, mapped to dotted hparams settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from compress.errors import UsageError

Model = Annotated[str, typer.Option("--model", "-m", help="Model name; see `lottery models`.")]
Width = Annotated[float | None, typer.Option(help="Width multiplier of hidden layers/channels.")]
Init = Annotated[str | None, typer.Option(help="Weight init: default, xavier_normal, kaiming_normal, torch.")]
DatasetOpt = Annotated[str, typer.Option("--dataset", "-d", help="Dataset name; see `lottery datasets`.")]
DataRoot = Annotated[Path | None, typer.Option(help="Folder with torchvision dataset files (mnist, cifar10, ...).")]
Download = Annotated[bool, typer.Option(help="Let torchvision download missing files (needs internet).")]
Seeds = Annotated[int, typer.Option(help="Number of seeds (0..N-1 from --first-seed).", min=1)]
FirstSeed = Annotated[int, typer.Option(help="First seed.", min=0)]
Out = Annotated[Path, typer.Option("--out", "-o", help="Root folder for run directories.")]
Optimizer = Annotated[str | None, typer.Option(help="sgd, adam or adamw.")]
Lr = Annotated[float | None, typer.Option(help="Learning rate (default: the model's recommended one).")]
BatchSize = Annotated[int | None, typer.Option(help="Batch size.")]
Epochs = Annotated[float | None, typer.Option(help="Training epochs per ticket (default 20).")]
Iterations = Annotated[int | None, typer.Option(help="Training iterations (overrides --epochs).")]
Schedule = Annotated[str | None, typer.Option(help="LR schedule: constant, cosine or step.")]
WeightDecay = Annotated[float | None, typer.Option(help="Weight decay.")]
Selection = Annotated[str | None, typer.Option(
    help="How scores become a mask: layerwise, global, erk, or an N:M pattern such as 2:4.")]
AllowCollapse = Annotated[bool, typer.Option(help="Keep a mask that empties or disconnects a layer.")]
NmPolicy = Annotated[str | None, typer.Option(
    help="N:M on a layer whose input size is not a multiple of M: fail (default) or dense (leave it dense).")]
LayerRate = Annotated[list[str] | None, typer.Option(help="Per-layer rate override NAME=RATE (repeatable).")]
Exclude = Annotated[list[str] | None, typer.Option(help="Layer never pruned: NAME, glob, first or last (repeatable).")]
Controls = Annotated[str | None, typer.Option(help="Sanity-check controls: 'reinit,random' (default), one, or none.")]
Tolerance = Annotated[float | None, typer.Option(help="Allowed drop below dense for 'winning' (default 0.005).")]
Margin = Annotated[float | None, typer.Option(help="Lead over each control needed for 'winning' (default 0.005).")]
Set = Annotated[list[str] | None, typer.Option("--set", help="Any setting as KEY=VALUE, e.g. train.momentum=0.8.")]
Json = Annotated[bool, typer.Option("--json", help="Print report.json to stdout.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and the final table.")]
Level = Annotated[int | None, typer.Option(help="Level to export (default: the run's selected level).")]
SeedOf = Annotated[int | None, typer.Option(help="Seed to export (default: the first one).")]


def settings(**flags: Any) -> dict[str, Any]:
    """Map given (non-None) flags to dotted settings, then apply --set KEY=VALUE items."""
    paths = {
        "model": "model.model", "width": "model.width", "init": "model.init",
        "dataset": "data.dataset", "data_root": "data.data_root", "download": "data.download",
        "optimizer": "train.optimizer", "lr": "train.lr", "batch_size": "train.batch_size",
        "epochs": "train.epochs", "iterations": "train.iterations", "schedule": "train.schedule",
        "weight_decay": "train.weight_decay", "selection": "prune.selection", "rate": "prune.rate",
        "layer_rate": "prune.layer_rates", "exclude": "prune.exclude", "tolerance": "controls.tolerance",
        "margin": "controls.margin", "allow_collapse": "prune.allow_collapse", "nm_policy": "prune.nm_policy",
    }
    out: dict[str, Any] = {}
    extra = flags.pop("set", None) or []
    controls = flags.pop("controls", None)
    if controls is not None:
        out["controls.controls"] = [] if controls.strip().lower() == "none" else [
            c.strip() for c in controls.split(",") if c.strip()]
    for key, value in flags.items():
        if value is None or (key in ("download", "allow_collapse") and value is False):
            continue
        out[paths.get(key, key)] = str(value) if isinstance(value, Path) else value
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set needs KEY=VALUE, got '{item}'.")
        out[key.strip()] = value.strip()
    return out
