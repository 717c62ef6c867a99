"""Training checkpoints: everything a resumed run needs to continue bit for bit after `kill -9`.

A checkpoint is a folder `ckpt-<iteration>/` holding `state.safetensors` (model, optimizer tensors, mask,
data-order generator, epoch order, callback tensors) and `state.json` (iteration, optimizer and scheduler
scalars, validation curve, callback values), both written atomically with compress.io, the JSON last: a
folder without it is unfinished and ignored. Older checkpoints are removed once a newer one is complete.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import torch

from compress.errors import RunDirError
from compress.io import load_json, load_tensors, save_json, save_tensors

STATE_TENSORS, STATE_JSON = "state.safetensors", "state.json"
FORMAT = "lottery.train-checkpoint/1"


def _iteration(p: Path) -> int:
    m = re.fullmatch(r"ckpt-(\d+)", p.name)
    return int(m.group(1)) if m else -1


def save(directory: str | Path, iteration: int, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> Path:
    """Write checkpoint `iteration` into `directory`, then drop the older ones."""
    root = Path(directory)
    d = root / f"ckpt-{iteration:09d}"
    save_tensors(d / STATE_TENSORS, tensors)
    save_json(d / STATE_JSON, {"format": FORMAT, "iteration": iteration, **info})
    for old in root.glob("ckpt-*"):
        if old != d and _iteration(old) >= 0 and (_iteration(old) < iteration or not (old / STATE_JSON).is_file()):
            shutil.rmtree(old, ignore_errors=True)
    return d


def latest(directory: str | Path | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """(tensors, info) of the newest finished checkpoint in `directory`, or None when there is none."""
    if directory is None or not Path(directory).is_dir():
        return None
    done = sorted((p for p in Path(directory).glob("ckpt-*") if (p / STATE_JSON).is_file()), key=_iteration)
    if not done:
        return None
    info = load_json(done[-1] / STATE_JSON)
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise RunDirError(f"{done[-1] / STATE_JSON} is not a lottery training checkpoint. It was left untouched; "
                          "move it away to start the training afresh.")
    return load_tensors(done[-1] / STATE_TENSORS), info


def split(prefix: str, state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Move the tensors of a flat `state` into `tensors` under `prefix`; return the JSON-able rest."""
    rest: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            tensors[f"{prefix}{key}"] = value.detach().cpu().clone()
        else:
            rest[key] = value
    return rest


def join(prefix: str, values: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Inverse of `split`: the JSON values plus the tensors stored under `prefix`."""
    return {**values, **{k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}}


def optimizer_state(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Optimizer state: per-parameter tensors go to `tensors` (`opt.<index>.<name>`), the rest is returned."""
    sd = opt.state_dict()
    scalars = {str(i): split(f"opt.{i}.", s, tensors) for i, s in sd["state"].items()}
    return {"param_groups": sd["param_groups"], "state": scalars}


def load_optimizer_state(opt: torch.optim.Optimizer, info: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    state = {int(i): join(f"opt.{i}.", v, tensors) for i, v in info["state"].items()}
    groups = [{**g, **({"betas": tuple(g["betas"])} if "betas" in g else {})} for g in info["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})
