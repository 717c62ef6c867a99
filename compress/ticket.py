"""`Ticket`: an architecture, its rewind/init weights, a mask, per-layer precision and metadata.

On disk (a "ticket directory"): `init.safetensors`, `mask.safetensors`, optionally
`final.safetensors` (trained weights), `metrics.json` (what was measured when it was made: accuracy,
losses, wall time) and `ticket.json`, written last: its presence marks the ticket finished.
`ticket.json` holds only what defines the ticket (no timings, no absolute paths), so the same settings
give a byte-identical ticket wherever it is made. ticket.json records the sha256 of each file (and the
number of non-finite weights); a file that does not match its digest is refused on load, so a weights file
swapped in from another model never runs. Tickets written before digests existed still load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress import digests
from compress.errors import RunDirError, ShapeMismatchError, UsageError
from compress.io import load_json, read_tensors, save_json, write_tensors
from compress.mask import Mask
from compress.models import ModelSpec, build, check_input

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
    source: Path | None = field(default=None, compare=False, repr=False)  # the directory it was loaded from

    @property
    def density(self) -> float:
        return self.mask.density

    def model(self, weights: str = "final") -> nn.Module:
        """Rebuild the network with `final` (trained) or `init` weights, pruned weights zeroed.

        Weights that do not fit the architecture ticket.json describes (`size mismatch for 1.weight`) or an
        architecture that cannot take its own input shape are a `RunDirError` naming the ticket."""
        use_final = weights == "final" and self.final is not None
        where = f"{self.source}/{'final' if use_final else 'init'}.safetensors" if self.source else "the weights"
        arch = (f"{self.spec.name} (input {tuple(self.spec.input_shape)}, {self.spec.num_classes} classes"
                f"{f', width {self.spec.width}' if self.spec.width != 1 else ''})")
        info = f" in {self.source / TICKET_FILE}" if self.source else ""
        try:
            model = build(self.spec)
        except UsageError:
            raise  # a refusal that names its own cause (e.g. code that needs --trust-code)
        except Exception as e:  # noqa: BLE001 - a builder fed a malformed spec can raise anything
            raise RunDirError(f"cannot build {arch}, the architecture described{info}: {_first(e)}. The ticket "
                              "is corrupt or was edited; re-run the step that wrote it.") from e
        try:
            model.load_state_dict(self.final if use_final else self.init)
            self.mask.apply(model)
        except (RuntimeError, ShapeMismatchError) as e:
            raise RunDirError(f"{where} does not fit {arch}, the architecture described{info}: {_first(e)}. "
                              "ticket.json or the weights were edited or come from different tickets; re-run "
                              "the step that wrote this ticket.") from e
        try:
            check_input(model, tuple(self.spec.input_shape), self.spec.num_classes, self.spec.name)
        except ShapeMismatchError as e:
            raise RunDirError(f"the ticket{f' in {self.source}' if self.source else ''} does not hold together: "
                              f"{e} Its ticket.json was edited or is corrupt.") from e
        return model

    def save(self, directory: str | Path) -> Path:
        """Write the weights and mask, then ticket.json (last) with each file's sha256 and non-finite count."""
        d = Path(directory)
        files = {"init.safetensors": _record(write_tensors(d / "init.safetensors", self.init)[1], self.init),
                 "mask.safetensors": {"sha256": self.mask.write(d / "mask.safetensors")[1]}}
        if self.final is not None:
            digest = write_tensors(d / "final.safetensors", self.final)[1]
            files["final.safetensors"] = _record(digest, self.final)
        if self.metrics:
            save_json(d / METRICS_FILE, self.metrics)
        save_json(d / TICKET_FILE, {
            "format": FORMAT, "spec": self.spec.to_dict(), "density": self.density,
            "precision": self.precision, "has_final": self.final is not None, "meta": self.meta, "files": files,
        })
        return d

    @classmethod
    def load(cls, directory: str | Path) -> Ticket:
        """Read a ticket directory: digests (when recorded), tensor names, shapes and finiteness are checked."""
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
        try:
            spec = ModelSpec.from_dict(info["spec"])
        except (KeyError, TypeError, ValueError) as e:
            raise RunDirError(f"{info_path} has a malformed 'spec' ({_first(e)}); expected name, input_shape, "
                              "num_classes. It was left untouched.") from e
        records = info.get("files") if isinstance(info.get("files"), dict) else {}
        init = _tensors(d / "init.safetensors", records, info_path)
        mask, digest = Mask.read(d / "mask.safetensors")
        digests.check(d / "mask.safetensors", digest, records.get("mask.safetensors"), info_path)
        final = _tensors(d / "final.safetensors", records, info_path) if info.get("has_final") else None
        _consistent(d, init, mask, final)
        meta = info.get("meta", {})
        metrics = load_json(d / METRICS_FILE) if (d / METRICS_FILE).is_file() else meta.pop("metrics", {})
        return cls(spec, init, mask, final, info.get("precision", {}), meta,
                   metrics if isinstance(metrics, dict) else {}, source=d)


def _record(digest: str, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    return {"sha256": digest, "nonfinite": sum(_nonfinite(t) for t in tensors.values())}


def _nonfinite(t: torch.Tensor) -> int:
    return int((~torch.isfinite(t)).sum()) if t.is_floating_point() else 0


def _tensors(path: Path, records: dict[str, Any], info_path: Path) -> dict[str, torch.Tensor]:
    tensors, digest = read_tensors(path)
    digests.check(path, digest, records.get(path.name), info_path)
    for name, t in tensors.items():
        bad = _nonfinite(t)
        if bad:
            raise RunDirError(f"{path} holds {bad} non-finite value{'s' * (bad != 1)} (NaN or inf) in '{name}': the "
                              "training that wrote it diverged. Its results are meaningless; lower the learning "
                              "rate and re-run that step.")
    return tensors


def _consistent(d: Path, init: dict[str, torch.Tensor], mask: Mask, final: dict[str, torch.Tensor] | None) -> None:
    """Files of one ticket name the same tensors with the same shapes (a file from another model does not)."""
    shapes = {k: tuple(v.shape) for k, v in init.items()}
    if final is not None:
        other = {k: tuple(v.shape) for k, v in final.items()}
        if other != shapes:
            diff = sorted(set(shapes.items()) ^ set(other.items()))[:3]
            raise RunDirError(f"{d}/final.safetensors and init.safetensors hold different tensors (first "
                              f"differences: {', '.join(f'{k} {s}' for k, s in diff)}): one of them comes from "
                              "another model. Re-run the step that wrote this ticket.")
    for name, m in sorted(mask.items()):
        if shapes.get(name) != tuple(m.shape):
            raise RunDirError(f"{d}/mask.safetensors entry '{name}' of shape {tuple(m.shape)} matches no weight of "
                              f"init.safetensors ({'no such tensor' if name not in shapes else shapes[name]}): the "
                              "mask comes from another model. Re-run the step that wrote this ticket.")


def _first(e: BaseException) -> str:
    """The useful part of an exception message on one line (torch's state_dict errors span several)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].startswith("Error(s) in loading state_dict"):
        lines = lines[1:]
    text = "; ".join(lines[:3]) or type(e).__name__
    return text[:400].rstrip(".")


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
