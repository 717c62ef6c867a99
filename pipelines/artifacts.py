"""Artifacts between stages: what kind a path is, its content digest, and the measured record behind it.

"Measure once": every artifact lives in the folder of the stage that made it, whose `result.json` holds what
was measured about it (accuracy, parity, size...). A later stage, or a command given that artifact's path,
reads that record instead of measuring again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from compress.errors import RunDirError, UsageError
from compress.io import load_json
from compress.method import Record

RESULT = "result.json"
STAGE = "stage.json"  # written when a stage starts: which method and key the folder belongs to
FORMAT = "lottery.stage/2"
SUFFIX_KIND = {".onnx": "onnx", ".tflite": "tflite", ".plan": "plan", ".engine": "plan"}
TICKET_KINDS = ("ticket", "model", "binary_ticket")
TICKET_FILES = ("ticket.json", "mask.safetensors", "init.safetensors", "final.safetensors")


def kind_of(path: Path) -> str:
    """The artifact kind a path holds: a ticket directory is a `model`, files go by suffix."""
    if path.is_dir():
        return "model"
    return SUFFIX_KIND.get(path.suffix, "")


def content_sha256(path: Path) -> str:
    """sha256 of a file, or of a ticket directory's files (names and bytes), so a changed input is a new run."""
    h = hashlib.sha256()
    files = [path / n for n in TICKET_FILES if (path / n).is_file()] if path.is_dir() else [path]
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def resolve_input(raw: str | Path, need: str, level: int | None = None, seed: int | None = None) -> tuple[str, Path]:
    """(kind, absolute path) of a user-given input for a need such as `ticket` or `onnx|tflite|plan|model`."""
    kinds = need.split("|")
    path = Path(raw).expanduser()
    if not path.exists():
        raise RunDirError(f"{path} does not exist. Give {_what(kinds)}.")
    if path.is_dir():
        if not set(kinds) & set(TICKET_KINDS):
            raise UsageError(f"{path} is a directory; this command takes {_what(kinds)}.")
        from compress.ticket import resolve

        ticket = resolve(path, level=level, seed=seed).resolve()
        kind = next(k for k in kinds if k in TICKET_KINDS)
        return kind, ticket
    kind = SUFFIX_KIND.get(path.suffix, "")
    if kind not in kinds:
        raise UsageError(f"{path.name} is not {_what(kinds)} (suffixes: "
                         f"{', '.join(s for s, k in SUFFIX_KIND.items() if k in kinds) or 'a ticket directory'}).")
    return kind, path.resolve()


def _what(kinds: list[str]) -> str:
    names = {"ticket": "a ticket, seed or run directory", "model": "a ticket, seed or run directory",
             "binary_ticket": "a binarized ticket's directory", "onnx": "an .onnx file", "tflite": "a .tflite file",
             "plan": "a TensorRT .plan/.engine file"}
    return " or ".join(dict.fromkeys(names.get(k, k) for k in kinds))


def record_of(path: Path) -> Record | None:
    """The record of the stage that wrote `path` (its `result.json` up to three folders up), if any."""
    path = path.resolve()
    for folder in list(path.parents)[:4]:
        result = folder / RESULT
        if not result.is_file():
            continue
        data = load_json(result)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            continue
        arts = {k: (folder / v).resolve() for k, v in data.get("artifacts", {}).items()}
        if path in arts.values():
            return Record(data["name"], data["method"], data["key"], dict(data.get("metrics", {})), arts,
                          list(data.get("notes", [])), dict(data.get("details", {})), list(data.get("inputs", [])))
    return None


def ticket_metrics(ticket_dir: Path) -> dict[str, Any]:
    """What was measured when a ticket was made (its metrics.json), for inputs given by path."""
    p = ticket_dir / "metrics.json"
    data = load_json(p) if p.is_file() else {}
    return data if isinstance(data, dict) else {}
