"""Scratch folders inside a directory the caller gives (the run dir), never the system temp dir.

Exporters and runners need a private folder for a child process's files (`.lce-job-*`, `lottery-edge-*`).
It lives in the run dir so a crash leaves nothing in /tmp (where the test set would linger), and it
records its owner (`OWNER_FILE`) so `remove_stale` can delete the folders of processes that are gone
(run on resume, under the run-dir lock). A folder without an owner record counts as stale once it is
older than `GRACE_S` (its creator is then long past writing the record).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from compress import owner

PREFIXES = (".lce-job-", "lottery-edge-")
OWNER_FILE = ".owner.json"
GRACE_S = 60.0


def make(parent: str | Path, prefix: str) -> Path:
    """A new private folder `parent/<prefix>XXXX` holding its owner record; the caller removes it."""
    if prefix not in PREFIXES:
        raise ValueError(f"scratch prefix {prefix!r} is not one of {PREFIXES}: remove_stale would never find it")
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    (d / OWNER_FILE).write_text(json.dumps(owner.this_process()))
    return d


@contextmanager
def folder(parent: str | Path, prefix: str) -> Iterator[Path]:
    """`make` as a context: the folder is removed on exit, whatever happens."""
    d = make(parent, prefix)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def stale(d: Path, now: float | None = None) -> bool:
    """Whether scratch folder `d` belongs to no living process (see the module docstring)."""
    try:
        record = json.loads((d / OWNER_FILE).read_text())
    except FileNotFoundError:
        try:
            return (now or time.time()) - d.stat().st_mtime > GRACE_S
        except FileNotFoundError:
            return False
    except (OSError, ValueError):
        return True
    if not isinstance(record, dict):
        return True
    return owner.alive(record) is False  # another host's folder (None) is kept: its owner may still run


def remove_stale(root: str | Path) -> list[Path]:
    """Delete the scratch folders under `root` (at any depth) whose owner is gone; returns what was removed."""
    root = Path(root)
    if not root.is_dir():
        return []
    removed = []
    for prefix in PREFIXES:
        for d in sorted(root.rglob(f"{prefix}*")):
            if d.is_dir() and not d.is_symlink() and stale(d):
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
    return removed
