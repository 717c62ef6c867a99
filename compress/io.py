"""Atomic file writes and safe readers for run directories.

A finished file is either complete or absent: writes go to a temporary file in the same folder,
are fsynced, then `os.replace`d over the target. Readers turn any parse failure into a
`RunDirError` that names the file and never delete it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.errors import RunDirError

if TYPE_CHECKING:  # torch and safetensors load on first use: the CLI's settings code imports this module
    import torch


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` so that a reader sees either the old file, nothing, or all of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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
    """Atomically write `obj` as indented JSON."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False, default=_default) + "\n").encode())


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
    from safetensors.torch import save

    clean = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return atomic_write_bytes(path, save(clean, metadata=metadata))


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file, or raise `RunDirError` naming it when it is corrupt or foreign."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise RunDirError(
            f"{path} is corrupt or not a safetensors file ({e}). It was left untouched; move it away or "
            "delete it yourself to let the run redo that step."
        ) from e


def _default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist") and hasattr(o, "shape"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
