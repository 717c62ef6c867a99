"""Stages chained with gates, resume and reports; and the `lottery` command line.

Python API (mirrors `lottery run`): `Pipeline.from_toml(path).run()`, `Pipeline.from_preset("quickstart")`.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Lazy: `import pipelines.cli` must not pull in every stage's dependencies.
    if name == "Pipeline":
        from pipelines.runner import Pipeline

        return Pipeline
    raise AttributeError(name)
