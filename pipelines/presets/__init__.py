"""Shipped pipelines: one TOML file per preset in this folder; `quickstart` is what `lottery run` runs."""

from __future__ import annotations

import tomllib
from pathlib import Path

from compress.errors import UnknownNameError

HERE = Path(__file__).parent
DEFAULT = "quickstart"


def names() -> dict[str, str]:
    """Preset name -> its description (from the TOML's pipeline.description)."""
    out = {}
    for p in sorted(HERE.glob("*.toml")):
        try:
            out[p.stem] = str(tomllib.loads(p.read_text()).get("pipeline", {}).get("description", ""))
        except tomllib.TOMLDecodeError:
            out[p.stem] = "(unreadable)"
    return out


def path(name: str) -> Path:
    p = HERE / f"{name}.toml"
    if not p.is_file():
        raise UnknownNameError("preset", name, names(), "Or give the path of your own pipeline .toml file.")
    return p
