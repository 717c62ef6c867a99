"""Ticket finders: `find(name, hp, seeds, out)` runs (or resumes) a search and writes its report.

Each finder is one file exposing an Hparams class (a `FindHparams` subclass) and
`run_seed(run_dir, hp, data, spec, seed)`; it registers here by name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compress import data as datasets
from compress import models
from compress.data import Dataset
from compress.errors import UnknownNameError, UsageError
from compress.finders.hparams import ControlHparams, DataHparams, FindHparams, ModelHparams
from compress.finders.imp import ImpHparams
from compress.finders.imp import run_seed as imp_run_seed
from compress.finders.rundir import run_dir
from compress.io import save_json
from compress.models import ModelSpec
from compress.report.levels import collect
from compress.report.plot import accuracy_vs_density

log = logging.getLogger("lottery")
RunSeed = Callable[[Path, Any, Dataset, ModelSpec, int], None]


@dataclass(frozen=True)
class Finder:
    name: str
    hparams: type[FindHparams]
    run_seed: RunSeed
    description: str
    report_extra: Callable[[Path], dict[str, Any]] | None = None  # finder-specific report fields


_REGISTRY: dict[str, Finder] = {}


def register(finder: Finder) -> None:
    _REGISTRY[finder.name] = finder


register(Finder("imp", ImpHparams, imp_run_seed, "Iterative Magnitude Pruning with rewinding (LTH)"))
# Other finders live in their own modules and register on import; one line each here.
FINDER_MODULES: list[str] = [
    "compress.finders.pai",  # grasp, snip, synflow, random (pruning at init)
    "compress.finders.mpt",
]


def _load() -> None:
    import importlib

    for module in FINDER_MODULES:
        importlib.import_module(module)


def get(name: str) -> Finder:
    _load()
    if name not in _REGISTRY:
        raise UnknownNameError("finder", name, _REGISTRY)
    return _REGISTRY[name]


def names() -> dict[str, str]:
    _load()
    return {n: f.description for n, f in sorted(_REGISTRY.items())}


# The LTH paper's per-network Adam learning rates; used unless the user sets train.lr.
RECOMMENDED_TRAIN: dict[str, dict[str, Any]] = {
    "conv2": {"lr": 2e-4}, "conv4": {"lr": 3e-4}, "conv6": {"lr": 3e-4}, "conv8": {"lr": 3e-4},
}


def make_hparams(name: str, settings: dict[str, Any] | None = None) -> FindHparams:
    """Finder `name`'s hparams from dotted settings (`model.model`, `train.lr`, `rounds`...), with the
    model's recommended training settings filled in where the user gave none."""
    settings = dict(settings or {})
    hp = get(name).hparams()
    model = settings.get("model.model", hp.model.model)
    for key, value in RECOMMENDED_TRAIN.get(str(model), {}).items():
        settings.setdefault(f"train.{key}", value)
    for dotted, value in settings.items():
        hp = hp.with_setting(dotted, value)
    return hp


def model_spec(hp: FindHparams, data: Dataset) -> ModelSpec:
    """The architecture sized to the dataset, checked by running one batch through it."""
    spec = ModelSpec(hp.model.model, data.input_shape, data.num_classes, hp.model.width, hp.model.init)
    models.check_input(models.build(spec, seed=0), data.input_shape, data.num_classes, hp.model.model)
    return spec


def load_data(hp: FindHparams) -> Dataset:
    return datasets.get(hp.data.dataset, data_root=hp.data.data_root, download=hp.data.download)


def find(name: str, hp: FindHparams, seeds: Sequence[int], out: str | Path) -> dict[str, Any]:
    """Run or resume finder `name` for every seed; write report.json and accuracy_vs_density.png."""
    finder = get(name)
    if not isinstance(hp, finder.hparams):
        raise UsageError(f"finder '{name}' takes {finder.hparams.__name__}, got {type(hp).__name__}.")
    if not seeds:
        raise UsageError("give at least one seed (--seeds N >= 1).")
    start = time.perf_counter()
    data = load_data(hp)
    spec = model_spec(hp, data)
    run = run_dir(out, name, hp)
    log.info("%s: %s on %s -> %s", name, hp.model.model, hp.data.dataset, run)
    for seed in seeds:
        finder.run_seed(run, hp, data, spec, seed)
    return write_report(run, name, hp, list(seeds), time.perf_counter() - start)


def write_report(run: Path, name: str, hp: FindHparams, seeds: list[int], wall_s: float) -> dict[str, Any]:
    body = collect(run, hp.controls)
    extra = _REGISTRY[name].report_extra if name in _REGISTRY else None
    if extra is not None:
        body.update(extra(run))
    report = {
        "finder": name, "model": hp.model.model, "width": hp.model.width, "dataset": hp.data.dataset,
        "digest": hp.digest(), "run_dir": str(run), "seeds": seeds,
        "tolerance": hp.controls.tolerance, "margin": hp.controls.margin, "controls": list(hp.controls.controls),
        **body,
        "wall_s": round(wall_s, 2),
        "train_wall_s": round(sum(r["wall_s"] for r in body["levels"]), 2),
        "hparams": hp.to_dict(),
    }
    save_json(run / "report.json", report)
    accuracy_vs_density([{"label": f"{name} ticket", "levels": report["levels"], "controls": report["controls"]}],
                        run / "accuracy_vs_density.png",
                        f"{name}: {hp.model.model} on {hp.data.dataset} ({len(seeds)} seed(s))",
                        report["dense_test_acc"])
    return report


__all__ = ["ControlHparams", "DataHparams", "FindHparams", "Finder", "ImpHparams", "ModelHparams", "find", "get",
           "make_hparams", "names", "register"]
