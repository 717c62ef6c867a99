"""`Ticket`: an architecture, its rewind/init weights, a mask, per-layer precision, metadata and metrics.

On disk (a "ticket directory"): `init.safetensors`, `mask.safetensors`, optionally
`final.safetensors` (trained weights), `metrics.json` (what was measured when it was made: accuracy,
losses, wall time) and `ticket.json`, written last: its presence marks the ticket finished.
`ticket.json` holds only what defines the ticket (no timings, no absolute paths), so the same settings
give a byte-identical ticket wherever it is made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.errors import RunDirError
from compress.io import load_json, load_tensors, save_json, save_tensors
from compress.mask import Mask
from compress.models import ModelSpec, build

TICKET_FILE = "ticket.json"
METRICS_FILE = "metrics.json"
FORMAT = "lottery.ticket/1"


@dataclass
class Ticket:
    spec: ModelSpec
    init: dict[str, torch.Tensor]
    mask: Mask
    final: dict[str, torch.Tensor] | None = None
    precision: dict[str, int] = field(default_factory=dict)  # layer -> weight bits (32 unless binarized)
    meta: dict[str, Any] = field(default_factory=dict)  # method, digest, level, seed, dataset, parent...
    metrics: dict[str, Any] = field(default_factory=dict)  # measured when made: test_acc, losses, wall_s

    @property
    def density(self) -> float:
        return self.mask.density

    def model(self, weights: str = "final") -> nn.Module:
        """Rebuild the network with `final` (trained) or `init` weights, pruned weights zeroed."""
        state = self.final if weights == "final" and self.final is not None else self.init
        model = build(self.spec)
        model.load_state_dict(state)
        return self.mask.apply(model)

    def save(self, directory: str | Path) -> Path:
        d = Path(directory)
        save_tensors(d / "init.safetensors", self.init)
        self.mask.save(d / "mask.safetensors")
        if self.final is not None:
            save_tensors(d / "final.safetensors", self.final)
        if self.metrics:
            save_json(d / METRICS_FILE, self.metrics)
        save_json(d / TICKET_FILE, {
            "format": FORMAT, "spec": self.spec.to_dict(), "density": self.density,
            "precision": self.precision, "has_final": self.final is not None, "meta": self.meta,
        })
        return d

    @classmethod
    def load(cls, directory: str | Path) -> Ticket:
        d = Path(directory)
        info_path = d / TICKET_FILE
        if not info_path.is_file():
            raise RunDirError(f"{d} holds no finished ticket ({TICKET_FILE} is missing). Point at a ticket "
                              "directory (seed-*/level-*) or a run directory that finished at least one level.")
        info = load_json(info_path)
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            found = info.get("format") if isinstance(info, dict) else None
            raise RunDirError(f"{info_path} is not a lottery ticket (format {found!r}, expected {FORMAT!r}). "
                              "It was left untouched.")
        final = load_tensors(d / "final.safetensors") if info.get("has_final") else None
        meta = info.get("meta", {})
        metrics = load_json(d / METRICS_FILE) if (d / METRICS_FILE).is_file() else meta.pop("metrics", {})
        return cls(ModelSpec.from_dict(info["spec"]), load_tensors(d / "init.safetensors"),
                   Mask.load(d / "mask.safetensors"), final, info.get("precision", {}), meta,
                   metrics if isinstance(metrics, dict) else {})


def _index(p: Path, prefix: str) -> int:
    m = re.fullmatch(rf"{prefix}-(\d+)", p.name)
    return int(m.group(1)) if m else -1


def finished_levels(seed_dir: Path) -> list[int]:
    return sorted(_index(p, "level") for p in seed_dir.glob("level-*") if (p / TICKET_FILE).is_file())


def resolve(path: str | Path, level: int | None = None, seed: int | None = None) -> Path:
    """Find a ticket directory from a ticket dir, a seed dir or a run dir (default level: the report's pick)."""
    p = Path(path)
    if not p.exists():
        raise RunDirError(f"{p} does not exist.")
    if (p / TICKET_FILE).is_file() and level is None:
        return p
    seeds = sorted((x for x in p.glob("seed-*") if x.is_dir()), key=lambda x: _index(x, "seed"))
    if seeds:
        chosen = [s for s in seeds if seed is None or _index(s, "seed") == seed]
        if not chosen:
            have = ", ".join(str(_index(s, "seed")) for s in seeds)
            raise RunDirError(f"{p} has no seed {seed}; it has seeds {have}.")
        seed_dir = chosen[0]
        if level is None and (p / "report.json").is_file():
            rep = load_json(p / "report.json")
            level = rep.get("metrics", {}).get("level") if isinstance(rep, dict) else None
    elif list(p.glob("level-*")):
        seed_dir = p
    else:
        raise RunDirError(f"{p} holds no finished ticket: no {TICKET_FILE}, no seed-*/ or level-*/ folders.")
    levels = finished_levels(seed_dir)
    if not levels:
        raise RunDirError(f"{seed_dir} holds no finished ticket: no level has {TICKET_FILE} yet.")
    if level is None:
        level = levels[-1]
    if level not in levels:
        raise RunDirError(f"level {level} is not finished in {seed_dir}; finished levels: "
                          f"{', '.join(map(str, levels))}.")
    return seed_dir / f"level-{level}"
