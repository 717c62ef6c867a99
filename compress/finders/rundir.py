"""Run directories: `<out>/<model>-<dataset>/<finder>-<digest>/seed-<s>/level-<L>/`.

`hparams.json` at the top records what the digest stands for; a directory whose record disagrees
is foreign and is refused (never overwritten).
"""

from __future__ import annotations

import re
from pathlib import Path

from compress.errors import RunDirError
from compress.finders.hparams import FindHparams
from compress.io import load_json, save_json


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("_") or "x"


def run_dir(out: str | Path, finder: str, hp: FindHparams) -> Path:
    """Create (or reopen) the run directory for `finder` with `hp`, checking it is ours."""
    d = Path(out) / f"{_safe(hp.model.model)}-{_safe(hp.data.dataset)}" / f"{finder}-{hp.digest()}"
    record = {"finder": finder, "digest": hp.digest(), "hparams": hp.to_dict(), "non_default": hp.non_default()}
    path = d / "hparams.json"
    if path.exists():
        old = load_json(path)
        old = old if isinstance(old, dict) else {}
        if old.get("finder") != finder or old.get("digest") != hp.digest():
            raise RunDirError(f"{path} belongs to another run (finder {old.get('finder', '?')}, digest "
                              f"{old.get('digest', '?')}); expected {finder}-{hp.digest()}. Nothing was changed; "
                              "use another --out.")
    else:
        save_json(path, record)
    return d


def seed_dir(run: Path, seed: int) -> Path:
    return run / f"seed-{seed}"


def level_dir(run: Path, seed: int, level: int) -> Path:
    return run / f"seed-{seed}" / f"level-{level}"
