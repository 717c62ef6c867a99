"""The Python API: run any method as the `lottery` command would (a one-stage pipeline), or a whole pipeline.

    from pipelines import api
    rep = api.run("imp", scope={"model": "conv4", "dataset": "digits"}, rounds=3, train={"epochs": 2})
    rep = api.run("export_onnx", input=rep["artifacts"]["ticket"], out="runs")  # paths relative to run_dir
    rep = api.pipeline("quickstart", out="runs")

Settings are the method's settings dataclass fields (nested as dicts, or dotted keys through `settings=`);
the returned dict is the report.json written into the run directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines import artifacts as arts
from pipelines import registry


def run(method: str, *, input: str | Path | None = None, out: str | Path | None = None,
        scope: dict[str, Any] | None = None, gates: dict[str, float] | None = None, level: int | None = None,
        settings: dict[str, Any] | None = None, progress: Any = None, trust_code: bool = False,
        **kwargs: Any) -> dict[str, Any]:
    """Run method `method` once (resuming a finished run): the same path as its `lottery` command.

    A `module:factory` model is imported when it is the one given in `scope` or with `trust_code` (a ticket
    naming one inside a run directory is code from that directory)."""
    from compress.errors import UsageError
    from pipelines.runner import Pipeline

    m = registry.get(method)
    stage: dict[str, Any] = {"kind": m.name, **(settings or {}), **kwargs}
    if gates:
        stage["gate"] = dict(gates)
    pipe_scope = dict(scope or {})
    if m.needs:
        if input is None:
            raise UsageError(f"method '{method}' takes an input: {m.needs[0].replace('|', ' or ')}.")
        kind, path = arts.resolve_input(input, m.needs[0], level=level, seed=pipe_scope.get("seed"))
        pipe_scope = {**input_scope(path), **pipe_scope}
        stage["input"] = str(path)
        out = out if out is not None else (path if path.is_dir() else path.parent)
    pipe = Pipeline({"pipeline": {**pipe_scope, "name": m.name}, "stages": [stage]},
                    f"lottery {' '.join(m.command) or m.name}", single=True)
    return pipe.run(out if out is not None else Path("runs"), progress=progress, trust_code=trust_code,
                    trusted_model=(scope or {}).get("model"))


def pipeline(name_or_path: str | Path | None = None, out: str | Path = "runs", sets: list[str] | None = None,
             **options: Any) -> dict[str, Any]:
    """Run (or resume) a preset or a pipeline .toml; returns its report.json."""
    from pipelines.runner import Pipeline

    return Pipeline.load(name_or_path).with_settings(sets).run(out, **options)


def input_scope(path: Path) -> dict[str, Any]:
    """The scope an input was made in: a ticket's architecture and dataset, an artifact's recorded scope."""
    from compress.io import load_json

    if path.is_dir():
        info = load_json(path / "ticket.json")
        spec, meta = info.get("spec", {}), info.get("meta", {})
        out = {"model": spec.get("name"), "width": spec.get("width"), "init": spec.get("init"),
               "dataset": meta.get("dataset"), "seed": meta.get("seed")}
        return {k: v for k, v in out.items() if v is not None}
    for folder in list(path.resolve().parents)[:4]:
        result = folder / arts.RESULT
        if result.is_file():
            data = load_json(result)
            if isinstance(data, dict) and isinstance(data.get("scope"), dict):
                return {k: v for k, v in data["scope"].items() if k in ("model", "width", "init", "dataset", "seed")}
    return {}


def artifact(report: dict[str, Any], kind: str) -> Path:
    """Absolute path of artifact `kind` in a report returned by `run`."""
    return Path(report["run_dir"]) / report["artifacts"][kind]
