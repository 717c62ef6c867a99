"""Atomic file writes and safe readers for run directories.

A finished file is either complete or absent: writes go to a temporary file in the same folder,
are fsynced, then `os.replace`d over the target, with the mode a plain `open()` would give (the umask's).
JSON is strict (RFC 8259 has no NaN or Infinity): a non-finite number is written as null and listed under
`NONFINITE_KEY` of the file's top-level object. Readers turn any parse failure into a `RunDirError` that
names the file and never delete it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.errors import RunDirError

if TYPE_CHECKING:  # torch and safetensors load on first use: the CLI's settings code imports this module
    import torch

NONFINITE_KEY = "nonfinite_as_null"  # path -> "NaN" / "Infinity" / "-Infinity" of each number written as null
log = logging.getLogger("lottery")


def _umask() -> int:
    """The process umask, read without changing it where the kernel tells it (Linux >= 4.7)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)  # elsewhere: the classic set-and-restore
    os.umask(old)
    return old


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` so that a reader sees either the old file, nothing, or all of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; the file should be as readable as any other
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Out of disk, Ctrl-C, ...: leave no half-written file behind, only the old one (if any).
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def save_json(path: str | Path, obj: Any) -> Path:
    """Atomically write `obj` as strict, indented JSON (non-finite numbers -> null, listed in the file)."""
    return atomic_write_bytes(path, (dumps(obj) + "\n").encode())


def dumps(obj: Any, indent: int | None = 2) -> str:
    """Strict JSON text of `obj`: NaN/inf become null, and a top-level object gets `NONFINITE_KEY` naming them."""
    bad: dict[str, str] = {}
    clean = _finite(obj, "", bad)
    if bad:
        if isinstance(clean, dict):
            clean[NONFINITE_KEY] = {**clean.get(NONFINITE_KEY, {}), **bad}
        else:  # a top-level list has no room for a note: say it where it is seen
            log.warning("non-finite numbers written as null: %s", ", ".join(bad))
    return json.dumps(clean, indent=indent, allow_nan=False)


def _finite(o: Any, where: str, bad: dict[str, str]) -> Any:
    """A copy of `o` made of JSON types only, non-finite floats replaced by None and recorded in `bad`."""
    if isinstance(o, bool) or o is None or isinstance(o, (int, str)):
        return o
    if isinstance(o, float):
        if math.isfinite(o):
            return o
        bad[where or "(top level)"] = "NaN" if math.isnan(o) else ("Infinity" if o > 0 else "-Infinity")
        return None
    if isinstance(o, dict):
        return {str(k): _finite(v, f"{where}.{k}" if where else str(k), bad) for k, v in o.items()}
    if isinstance(o, (list, tuple, set, frozenset)):
        return [_finite(v, f"{where}[{i}]", bad) for i, v in enumerate(o)]
    return _finite(_default(o), where, bad)


def load_json(path: str | Path) -> Any:
    """Read JSON, or raise `RunDirError` naming the file when it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunDirError(
            f"{path} is corrupt or not a lottery file ({e}). It was left untouched; move it away or "
            "delete it yourself to let the run redo that step."
        ) from e


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    """Atomically write tensors as safetensors."""
    return write_tensors(path, tensors, metadata)[0]


def write_tensors(path: str | Path, tensors: dict[str, torch.Tensor],
                  metadata: dict[str, str] | None = None) -> tuple[Path, str]:
    """Atomically write tensors as safetensors; returns the path and the sha256 of the bytes written."""
    from safetensors.torch import save

    clean = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    data = save(clean, metadata=metadata)
    return atomic_write_bytes(path, data), hashlib.sha256(data).hexdigest()


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file, or raise `RunDirError` naming it when it is corrupt or foreign."""
    return read_tensors(path)[0]


def read_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """Tensors of a safetensors file and the sha256 of the very bytes they were parsed from."""
    from safetensors.torch import load

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RunDirError(f"cannot read {path}: {e.strerror or e}. A finished step needs this file; re-run the "
                          "step that writes it.") from e
    try:
        tensors = load(data)
    except Exception as e:  # noqa: BLE001 - the Rust parser raises several types on bad bytes
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RunDirError(
            f"{path} is corrupt or not a safetensors file ({why}). It was left untouched; move it away or "
            "delete it yourself to let the run redo that step."
        ) from e
    # The file's header order is not stable across processes: a fixed (natural) order keeps everything derived
    # from these dicts (pooled selections, JSON) the same on every run.
    return {k: tensors[k] for k in sorted(tensors, key=natural_key)}, hashlib.sha256(data).hexdigest()


def natural_key(name: str) -> list[Any]:
    """`layer10.weight` after `layer2.weight`: digits compare as numbers (module order for Sequential nets)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist"):  # torch tensors, numpy arrays and numpy scalars
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
