"""Sanity-check controls trained at every level with the ticket's budget and data order.

- `reinit`: the ticket's mask with a fresh random initialization (LTH paper's control).
- `random`: a random mask with the ticket's per-layer density, from the ticket's own start weights
  (Ma et al., NeurIPS 2021: a ticket must beat both to be called winning).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from compress.data import Dataset
from compress.io import load_json, save_json
from compress.mask import Mask
from compress.models import ModelSpec, build
from compress.settings import ControlHparams, TrainHparams
from compress.train import train

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


def run_controls(level_dir: Path, spec: ModelSpec, start: dict[str, torch.Tensor], mask: Mask, data: Dataset,
                 controls: ControlHparams, train_hp: TrainHparams, seed: int, level: int) -> dict[str, dict]:
    """Train each missing control for one level with the ticket's budget; finished ones are read back."""
    results: dict[str, dict] = {}
    for kind in controls.controls:
        path = control_path(level_dir, kind)
        if path.is_file():
            results[kind] = load_json(path)
            continue
        cseed = control_seed(seed, level, kind)
        if kind == "reinit":
            model, cmask = build(spec, seed=cseed), mask
        else:
            model = build(spec)
            model.load_state_dict(start)
            cmask = random_mask_like(mask, cseed)
        r = train(model, data, train_hp, mask=cmask, seed=seed)
        results[kind] = {"kind": kind, "density": cmask.density, "control_seed": cseed, **r.metrics()}
        save_json(path, results[kind])
        log.info("  seed %d level %d %-6s control: test_acc %.4f (%.1f s)", seed, level, kind, r.test_acc, r.wall_s)
    return results
