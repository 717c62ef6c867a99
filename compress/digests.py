"""File digests recorded when a file is written and checked when it is read back.

A run directory is untrusted input once it leaves the process that wrote it: a weights file swapped in
from another model, or edited by hand, must be refused rather than silently used. The writer records
`{"sha256": ...}` per file in its own JSON (ticket.json, result.json); readers call `check`.
Records written before digests existed have none: they are accepted as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compress.errors import RunDirError
from compress.io import sha256_file


def check(path: str | Path, found: str, record: Any, recorded_in: str | Path) -> None:
    """Raise `RunDirError` unless `found` (the sha256 of `path`'s bytes) equals the recorded one, if any."""
    path = Path(path)
    if record is None:
        return
    expected = record.get("sha256") if isinstance(record, Mapping) else None
    if not isinstance(expected, str):
        raise RunDirError(f"{recorded_in} holds a malformed digest record for {path.name} ({str(record)[:80]}); "
                          "it is corrupt. Re-run the step that wrote it.")
    if expected == found:
        return
    raise RunDirError(
        f"{path} does not match the sha256 recorded in {recorded_in} when it was written (recorded "
        f"{expected[:12]}..., found {found[:12]}...): it was changed, or swapped in from another model or run. "
        f"Refusing to use it. Restore the original {path.name}, or re-run the step that wrote it."
    )


def check_files(directory: str | Path, records: Mapping[str, Mapping[str, Any]], recorded_in: str | Path) -> None:
    """Check every file named in `records` (file name -> {"sha256": ...}) under `directory`."""
    d = Path(directory)
    for name, record in records.items():
        path = d / name
        if not path.is_file():
            raise RunDirError(f"{path} is missing, though {recorded_in} records it; restore it or re-run the "
                              "step that wrote it.")
        check(path, sha256_file(path), record, recorded_in)


def records(directory: str | Path, names: list[str]) -> dict[str, dict[str, str]]:
    """`{name: {"sha256": ...}}` for files already written in `directory` (for a writer's JSON)."""
    return {n: {"sha256": sha256_file(Path(directory) / n)} for n in names}
