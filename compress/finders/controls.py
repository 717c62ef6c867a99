"""Sanity-check controls trained at every level with the ticket's budget and data order.

- `reinit`: the ticket's mask with a fresh random initialization (LTH paper's control).
- `random`: a random mask with the ticket's per-layer density, from the ticket's own start weights
  (Ma et al., NeurIPS 2021: a ticket must beat both to be called winning).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from compress.data import Dataset
from compress.io import load_json, save_json
from compress.mask import Mask
from compress.models import ModelSpec, build
from compress.settings import ControlHparams, TrainHparams
from compress.train.loop import TrainResult
from compress.train.many import train_many
from compress.train.stacked import Member

log = logging.getLogger("lottery")


def control_seed(seed: int, level: int, kind: str) -> int:
    return 1_000_003 * (seed + 1) + 1009 * level + {"reinit": 1, "random": 2}[kind]


def random_mask_like(mask: Mask, seed: int) -> Mask:
    """A random mask keeping exactly as many weights per layer as `mask`."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, m in mask.items():
        flat = torch.zeros(m.numel(), dtype=torch.bool)
        flat[torch.randperm(m.numel(), generator=g)[: int(m.sum())]] = True
        out[name] = flat.reshape(m.shape)
    return Mask(out)


def control_path(level_dir: Path, kind: str) -> Path:
    return level_dir / f"control-{kind}.json"


@dataclass
class Control:
    """One control still to train: written to `control_path(level_dir, kind)` once trained."""

    level_dir: Path
    kind: str
    seed: int
    level: int
    control_seed: int
    member: Member  # the model at its start weights, the control's mask, the ticket's data order


def pending_controls(level_dir: Path, spec: ModelSpec, start: dict[str, torch.Tensor], mask: Mask,
                     controls: ControlHparams, seed: int, level: int) -> list[Control]:
    """The controls of one level that have no result yet, ready to train (with the ticket's data order)."""
    out = []
    for kind in controls.controls:
        if control_path(level_dir, kind).is_file():
            continue
        cseed = control_seed(seed, level, kind)
        if kind == "reinit":
            model, cmask = build(spec, seed=cseed), mask
        else:
            model = build(spec)
            model.load_state_dict(start)
            cmask = random_mask_like(mask, cseed)
        out.append(Control(level_dir, kind, seed, level, cseed, Member(model, cmask, seed)))
    return out


def save_control(c: Control, r: TrainResult) -> dict:
    """Write a trained control's result beside its level's ticket."""
    result = {"kind": c.kind, "density": c.member.mask.density, "control_seed": c.control_seed, **r.metrics()}
    save_json(control_path(c.level_dir, c.kind), result)
    log.info("  seed %d level %d %-6s control: test_acc %.4f (%.1f s)", c.seed, c.level, c.kind, r.test_acc,
             r.wall_s)
    return result


def run_controls(level_dir: Path, spec: ModelSpec, start: dict[str, torch.Tensor], mask: Mask, data: Dataset,
                 controls: ControlHparams, train_hp: TrainHparams, seed: int, level: int) -> dict[str, dict]:
    """Train each missing control for one level with the ticket's budget (together when `controls.stacked`
    and faster, compress.train.many); finished ones are read back."""
    todo = pending_controls(level_dir, spec, start, mask, controls, seed, level)
    for c, r in zip(todo, train_many([c.member for c in todo], data, train_hp, controls.stacked), strict=True):
        save_control(c, r)
    return {kind: load_json(control_path(level_dir, kind)) for kind in controls.controls}
