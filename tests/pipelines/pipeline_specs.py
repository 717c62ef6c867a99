"""Tiny pipeline specs shared by the pipeline tests: digits, LeNet width 0.25, one epoch per training."""

from __future__ import annotations

import copy
from typing import Any

TRAIN = {"epochs": 1, "batch_size": 64, "eval_every": 5}


def tiny(*extra: dict[str, Any], controls: tuple[str, ...] = (), rounds: int = 2) -> dict[str, Any]:
    """dense -> imp (no controls unless asked) -> bench (PyTorch eager), with generous gates, plus `extra`."""
    return copy.deepcopy({
        "pipeline": {"name": "tiny", "model": "lenet_300_100", "width": 0.25, "dataset": "digits", "threads": 1},
        "stages": [
            {"kind": "dense", "train": dict(TRAIN), "gate": {"min_acc": 0.3}},
            {"kind": "imp", "rounds": rounds, "train": dict(TRAIN), "controls": {"controls": list(controls)},
             "gate": {"max_acc_drop": 0.5, "min_storage_ratio": 1.1, "max_density": 0.9}},
            {"kind": "bench", "artifact": "model", "iterations": 5, "warmup": 1, "batch_sizes": [1],
             "gate": {"max_latency_ratio": 100.0}},
            *extra,
        ],
    })


def to_toml(raw: dict[str, Any]) -> str:
    """Just enough TOML for the specs above (tables of scalars, lists and inline tables)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    lines = ["[pipeline]", *(f"{k} = {value(v)}" for k, v in raw["pipeline"].items())]
    for s in raw["stages"]:
        lines += ["", "[[stages]]", *(f"{k} = {value(v)}" for k, v in s.items())]
    return "\n".join(lines) + "\n"
