"""Pipeline specs: TOML validated into dataclasses before anything runs.

```toml
[pipeline]                      # shared by every stage; its digest names the run directory
name = "quickstart"
model = "lenet_300_100"
dataset = "mnist5k"

[[stages]]
kind = "dense"                  # see `lottery presets --stages`
train = { epochs = 10 }         # the stage's own settings (its hparams dataclass)
gate = { min_acc = 0.9 }        # see pipelines.gates

[[stages]]
kind = "imp"
name = "ticket"                 # optional; defaults to the kind, must be unique
rounds = 3
gate = { max_acc_drop = 0.01 }
```

Every error names the key path (`imp.rounds`, `pipeline.model`, `ticket.gate.min_acc`) and what is valid.
`--set STAGE.KEY=VALUE` edits the same tree (`pipeline.dataset=digits`, `imp.train.epochs=2`).
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compress.errors import LotteryError, UsageError
from compress.hparams import Hparams
from pipelines import gates as gate_defs
from pipelines import stages as registry
from pipelines.stages.base import PipelineSettings

TOP_KEYS = ("pipeline", "stages")
RESERVED = ("kind", "name", "gate")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class SpecError(UsageError):
    """A pipeline spec that does not validate."""


@dataclass(frozen=True)
class StageSpec:
    name: str
    kind: str
    hp: Hparams
    gates: dict[str, float] = field(default_factory=dict)

    @property
    def stage(self) -> registry.Stage:
        return registry.get(self.kind)


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
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path} is not valid TOML: {e}.") from e


def parse(raw: dict[str, Any], source: str = "<spec>") -> PipelineSpec:
    """Validate a raw tree into a `PipelineSpec`; errors are `SpecError` prefixed with `source`."""
    try:
        return _parse(raw, source)
    except LotteryError as e:
        msg = str(e)
        raise SpecError(msg if msg.startswith(source) else f"{source}: {msg}") from e


def _parse(raw: dict[str, Any], source: str) -> PipelineSpec:
    unknown = [k for k in raw if k not in TOP_KEYS]
    if unknown:
        raise SpecError(f"unknown top-level key '{unknown[0]}'. Valid keys: {', '.join(TOP_KEYS)}.")
    pipe = raw.get("pipeline", {})
    if not isinstance(pipe, dict):
        raise SpecError("'pipeline' must be a table of settings ([pipeline]).")
    settings = PipelineSettings.from_dict(pipe, path="pipeline.")
    items = raw.get("stages", [])
    if not isinstance(items, list) or not items or not all(isinstance(s, dict) for s in items):
        raise SpecError("a pipeline needs at least one [[stages]] table with a 'kind'. Valid kinds: "
                        f"{', '.join(registry.names())}.")
    specs: list[StageSpec] = []
    produced: set[str] = set()
    has_baseline = False
    for i, item in enumerate(items):
        spec = _stage(item, i, settings, {s.name for s in specs})
        stage = spec.stage
        missing = [n for n in stage.needs if n not in produced]
        if missing:
            makers = sorted(k for k in registry.names() if set(missing) & set(registry.get(k).produces))
            raise SpecError(f"stage '{spec.name}' ({spec.kind}) needs a {missing[0]}, which no earlier stage "
                            f"produces (stages before it: {', '.join(s.name for s in specs) or 'none'}). Put one "
                            f"of {', '.join(makers) or 'no registered stage'} before it.")
        has_baseline = has_baseline or stage.baseline
        for g in spec.gates:
            if gate_defs.get(g).baseline and not has_baseline:
                raise SpecError(f"gate '{spec.name}.gate.{g}' compares with the dense baseline, but no stage up to "
                                "this one trains it. Add a 'dense' stage first.")
        produced.update(stage.produces)
        specs.append(spec)
    return PipelineSpec(settings, specs, source, copy.deepcopy(raw))


def _stage(item: dict[str, Any], i: int, settings: PipelineSettings, taken: set[str]) -> StageSpec:
    if "kind" not in item:
        raise SpecError(f"stages[{i}] has no 'kind'. Valid kinds: {', '.join(registry.names())}.")
    kind = item["kind"]
    stage = registry.get(str(kind))
    name = item.get("name", kind)
    if not isinstance(name, str) or not NAME_RE.match(name) or name == "pipeline":
        raise SpecError(f"stages[{i}].name {name!r} must be lowercase letters, digits and '_', start with a "
                        "letter, and not be 'pipeline'.")
    if name in taken:
        raise SpecError(f"two stages are named '{name}'. Give one a different 'name = \"...\"' "
                        f"(names so far: {', '.join(sorted(taken))}).")
    gates = item.get("gate", {})
    if not isinstance(gates, dict):
        raise SpecError(f"'{name}.gate' must be a table like gate = {{ max_acc_drop = 0.01 }}.")
    valid = gate_defs.valid_for(stage.metrics)
    checked: dict[str, float] = {}
    for g, value in gates.items():
        if g not in gate_defs.GATES:
            raise SpecError(f"unknown gate '{name}.gate.{g}'. Gates valid for a {kind} stage: "
                            f"{', '.join(valid) or 'none'}.")
        if g not in valid:
            raise SpecError(f"gate '{name}.gate.{g}' checks metric '{gate_defs.get(g).metric}', which a {kind} stage "
                            f"does not produce (it reports {', '.join(stage.metrics)}). Gates valid here: "
                            f"{', '.join(valid) or 'none'}.")
        checked[g] = gate_defs.check_value(g, value, f"{name}.gate.{g}")
    settings_tree = {k: v for k, v in item.items() if k not in RESERVED}
    hp = stage.hparams()
    try:
        for dotted, value in (stage.defaults(settings) if stage.defaults else {}).items():
            if not _has(settings_tree, dotted):
                hp = hp.with_setting(dotted, value)
        user = stage.hparams.from_dict(settings_tree, path=f"{name}.")
        hp = _merge(hp, user, settings_tree)
    except UsageError as e:
        msg = str(e)
        raise SpecError(msg if f"'{name}." in msg else f"stage '{name}' ({kind}): {msg}") from e
    return StageSpec(name, str(kind), hp, checked)


def _has(tree: dict[str, Any], dotted: str) -> bool:
    head, _, rest = dotted.partition(".")
    if head not in tree:
        return False
    return not rest or (isinstance(tree[head], dict) and _has(tree[head], rest))


def _merge(base: Hparams, user: Hparams, tree: dict[str, Any]) -> Hparams:
    """`base` (defaults applied) overlaid with the fields the user set in `tree`."""
    changes: dict[str, Any] = {}
    for key, value in tree.items():
        mine = getattr(user, key)
        if isinstance(value, dict) and isinstance(mine, Hparams):
            changes[key] = _merge(getattr(base, key), mine, value)
        else:
            changes[key] = mine
    return base.replace(**changes)


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
        target[leaf] = _parse_value(value.strip())
    return out


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return [_parse_value(p) for p in raw.split(",") if p] if "," in raw else raw
