"""Pipeline specs: TOML validated into methods with settings before anything runs.

```toml
[pipeline]                      # the scope shared by every stage; its digest names the run directory
name = "quickstart"
model = "lenet_300_100"
dataset = "mnist5k"

[[stages]]
kind = "dense"                  # a method; see `lottery presets --stages`
train = { epochs = 10 }         # the method's own settings (its settings dataclass)
gate = { min_acc = 0.9 }        # see pipelines.gates; added to the method's default gates

[[stages]]
kind = "export_onnx"
name = "onnx"                   # optional; defaults to the kind, must be unique
input = "runs/x/ticket"         # optional: an existing artifact instead of an earlier stage's
```

A `lottery` command builds the same tree for its one stage, so the command and `lottery run` resolve settings,
defaults and gates through the same code (`stage_spec`). Every error names the key path and what is valid.
`--set STAGE.KEY=VALUE` edits the tree (`pipeline.dataset=digits`, `imp.train.epochs=2`).
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compress.catalog import RECOMMENDED_TRAIN
from compress.errors import LotteryError, UsageError
from compress.hparams import Hparams, setting
from compress.method import Method, Scope
from compress.settings import TrainHparams
from pipelines import gates as gate_defs
from pipelines import registry

TOP_KEYS = ("pipeline", "stages")
RESERVED = ("kind", "name", "gate", "input")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class SpecError(UsageError):
    """A pipeline spec that does not validate."""


@dataclass(frozen=True)
class PipelineSettings(Scope):
    """The `[pipeline]` table: a name and description, and the scope every stage shares."""

    name: str = setting("pipeline", digest=False, help="Pipeline name (names its run directory).")
    description: str = setting("", digest=False, help="One line shown in reports.")

    def scope(self) -> Scope:
        return Scope(**{k: getattr(self, k) for k in Scope.__dataclass_fields__})


@dataclass(frozen=True)
class StageSpec:
    name: str
    method: Method
    hp: Hparams
    gates: dict[str, float] = field(default_factory=dict)
    input: str | None = None

    @property
    def kind(self) -> str:
        return self.method.name


@dataclass
class PipelineSpec:
    settings: PipelineSettings
    stages: list[StageSpec]
    source: str
    raw: dict[str, Any]

    @property
    def name(self) -> str:
        return self.settings.name


def load(path: str | Path) -> dict[str, Any]:
    """Read a TOML spec into a raw tree (validated by `parse`)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"pipeline spec {path} does not exist. Give a .toml file or a preset name "
                        "(see `lottery presets`).")
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise SpecError(f"{path} is not UTF-8 text (byte {e.start}): a pipeline spec is a TOML file.") from e
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path} is not valid TOML: {e}.") from e


def parse(raw: dict[str, Any], source: str = "<spec>", single: bool = False) -> PipelineSpec:
    """Validate a raw tree into a `PipelineSpec`; errors are `SpecError` prefixed with `source`. `single` (a
    command): settings are named as the command's flags know them, without a stage name in front."""
    try:
        return _parse(raw, source, single)
    except LotteryError as e:
        msg = str(e)
        raise SpecError(msg if msg.startswith(source) else f"{source}: {msg}") from e


def _parse(raw: dict[str, Any], source: str, single: bool = False) -> PipelineSpec:
    unknown = [k for k in raw if k not in TOP_KEYS]
    if unknown:
        raise SpecError(f"unknown top-level key '{unknown[0]}'. Valid keys: {', '.join(TOP_KEYS)}.")
    pipe = raw.get("pipeline", {})
    if not isinstance(pipe, dict):
        raise SpecError("'pipeline' must be a table of settings ([pipeline]).")
    settings = PipelineSettings().updated(pipe, "" if single else "pipeline.")
    items = raw.get("stages", [])
    if not isinstance(items, list) or not items or not all(isinstance(s, dict) for s in items):
        raise SpecError("a pipeline needs at least one [[stages]] table with a 'kind'. Valid kinds: "
                        f"{', '.join(registry.names())}.")
    specs: list[StageSpec] = []
    produced: set[str] = set()
    has_baseline = False
    for i, item in enumerate(items):
        spec = _stage(item, i, settings.scope(), {s.name for s in specs}, single)
        method = spec.method
        missing = [n for n in method.inputs(spec.hp) if spec.input is None and not set(n.split("|")) & produced]
        if missing:
            makers = sorted(m.name for m in registry.all_methods() if set(missing[0].split("|")) & set(m.produces))
            raise SpecError(f"stage '{spec.name}' ({spec.kind}) needs a {missing[0].replace('|', ' or ')}, which no "
                            f"earlier stage produces (stages before it: {', '.join(s.name for s in specs) or 'none'})."
                            f" Put one of {', '.join(makers) or 'no registered method'} before it, or give it an "
                            "'input' path.")
        has_baseline = has_baseline or method.baseline
        for g in spec.gates:
            if gate_defs.get(g).baseline and not has_baseline:
                raise SpecError(f"gate '{spec.name}.gate.{g}' compares with the dense baseline, but no stage up to "
                                "this one trains it. Add a 'dense' stage first.")
        produced.update(method.produces)
        specs.append(spec)
    return PipelineSpec(settings, specs, source, copy.deepcopy(raw))


def resolve_settings(method: Method, scope: Scope, tree: dict[str, Any], where: str = "") -> Hparams:
    """The method's settings: its defaults, then the model's recommended training settings for groups that
    take them (unless given), then `tree` (nested or dotted keys), validated once. The one path for commands
    and pipeline stages."""
    base = method.settings()
    given = _dotted(tree)
    recommended: dict[str, Any] = {}
    for f in base.__dataclass_fields__.values():
        if f.metadata.get("model_defaults") and isinstance(getattr(base, f.name), TrainHparams):
            for k, v in RECOMMENDED_TRAIN.get(scope.model, {}).items():
                if f"{f.name}.{k}" not in given:
                    recommended[f"{f.name}.{k}"] = v
    return base.updated(recommended, where).updated(tree, where)


def stage_spec(item: dict[str, Any], scope: Scope, name: str | None = None, single: bool = False) -> StageSpec:
    """One stage from its raw table (kind, optional name/input/gate, settings)."""
    kind = item["kind"]
    method = registry.get(str(kind))
    name = name or item.get("name", kind)
    settings_tree = {k: v for k, v in item.items() if k not in RESERVED}
    try:
        hp = resolve_settings(method, scope, settings_tree, "" if single else f"{name}.")
    except UsageError as e:
        msg = str(e)
        raise SpecError(msg if single or f"'{name}." in msg else f"stage '{name}' ({kind}): {msg}") from e
    gates = item.get("gate", {})
    if not isinstance(gates, dict):
        raise SpecError(f"'{name}.gate' must be a table like gate = {{ max_acc_drop = 0.01 }}.")
    valid = gate_defs.valid_for(method.metrics)
    checked = method.default_gates(hp)
    for g, value in gates.items():
        if g not in gate_defs.GATES:
            raise SpecError(f"unknown gate '{name}.gate.{g}'. Gates valid for a {kind} stage: "
                            f"{', '.join(valid) or 'none'}.")
        if g not in valid:
            raise SpecError(f"gate '{name}.gate.{g}' checks metric '{gate_defs.get(g).metric}', which a {kind} stage "
                            f"does not produce (it reports {', '.join(method.metrics)}). Gates valid here: "
                            f"{', '.join(valid) or 'none'}.")
        checked[g] = gate_defs.check_value(g, value, f"{name}.gate.{g}")
    inp = item.get("input")
    if inp is not None and not isinstance(inp, str):
        raise SpecError(f"'{name}.input' must be a path (a string), got {inp!r}.")
    return StageSpec(name, method, hp, checked, inp)


def _stage(item: dict[str, Any], i: int, scope: Scope, taken: set[str], single: bool = False) -> StageSpec:
    if "kind" not in item:
        raise SpecError(f"stages[{i}] has no 'kind'. Valid kinds: {', '.join(registry.names())}.")
    name = item.get("name", item["kind"])
    if not isinstance(name, str) or not NAME_RE.match(name) or name == "pipeline":
        raise SpecError(f"stages[{i}].name {name!r} must be lowercase letters, digits and '_', start with a "
                        "letter, and not be 'pipeline'.")
    if name in taken:
        raise SpecError(f"two stages are named '{name}'. Give one a different 'name = \"...\"' "
                        f"(names so far: {', '.join(sorted(taken))}).")
    return stage_spec(item, scope, name, single)


def _dotted(tree: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for k, v in tree.items():
        key = f"{prefix}{k}"
        out |= _dotted(v, f"{key}.") if isinstance(v, dict) else {key}
    return out


def apply_sets(raw: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """A copy of `raw` with `STAGE.KEY=VALUE` items applied (`pipeline.KEY`, `STAGE.gate.NAME` too)."""
    out = copy.deepcopy(raw)
    stages = out.get("stages", []) if isinstance(out.get("stages"), list) else []
    by_name = {str(s.get("name", s.get("kind"))): s for s in stages if isinstance(s, dict)}
    for item in sets:
        key, sep, value = item.partition("=")
        head, _, rest = key.strip().partition(".")
        if not sep or not rest:
            raise SpecError(f"--set needs STAGE.KEY=VALUE (or pipeline.KEY=VALUE), got '{item}'. Stages here: "
                            f"{', '.join(by_name) or 'none'}.")
        if head == "pipeline":
            target = out.setdefault("pipeline", {})
        elif head in by_name:
            target = by_name[head]
        else:
            raise SpecError(f"--set '{item}': no stage named '{head}'. Valid: pipeline, {', '.join(by_name)}.")
        *parents, leaf = rest.split(".")
        for p in parents:
            nxt = target.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise SpecError(f"--set '{item}': '{head}.{p}' is a value, not a table of settings.")
            target = nxt
        target[leaf] = parse_value(value.strip())
    return out


def parse_value(raw: str) -> Any:
    """A command-line value: JSON when it parses (numbers, lists, true/false), a comma list, else the string."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return [parse_value(p) for p in raw.split(",") if p] if "," in raw else raw
