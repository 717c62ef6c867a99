"""Helpers shared by benchmark scripts: peak memory, JSON output next to the scripts."""

from __future__ import annotations

import platform
import resource
import time
from pathlib import Path
from typing import Any

import torch

from compress.io import save_json

RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MB (Linux reports KB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)


def machine() -> dict[str, Any]:
    return {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d")}


def write(name: str, payload: dict[str, Any]) -> Path:
    path = save_json(RESULTS / f"{name}.json", payload)
    print(f"wrote {path}")
    return path
