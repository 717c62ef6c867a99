"""Hyperparameters as frozen dataclasses whose digest names run directories.

`digest()` hashes only the fields that differ from their defaults (open_lth's rule), so adding a
field with a neutral default keeps every existing run directory valid. Fields marked
`NO_DIGEST` (locations, verbosity, reporting thresholds) never change a digest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Self

from compress.errors import UsageError

NO_DIGEST = {"digest": False}
_UNSET: Any = dataclasses.MISSING


def setting(default: Any = _UNSET, *, help: str, factory: Any = None, choices: tuple[Any, ...] | None = None,
            digest: bool = True, flag: str | None = None, short: str | None = None, lo: float | None = None,
            hi: float | None = None, lo_open: bool = False, hi_open: bool = False, prefix: str | None = None,
            model_defaults: bool = False, cli: bool = True) -> Any:
    """A settings field: its default, its help text and its simple rules live here and nowhere else.

    `choices` and the `lo`/`hi` bounds are checked by `Hparams` on construction (same words everywhere);
    `flag` names the command-line option (default: the field name with dashes); `short` adds a one-letter
    alias; `digest=False` keeps the field out of the run-directory digest (locations, verbosity, thresholds).
    For a group of settings (`factory=` a Hparams class): `prefix` is put before its members' flags ("" for
    none, default "<field>-"), and `model_defaults` gives a training group the model's recommended settings
    (compress.catalog.RECOMMENDED_TRAIN) unless the user sets them. `cli=False`: no flag (a field a method fixes,
    e.g. the rule of `find rigl`); still settable with --set and in specs.
    """
    meta = {"help": help, "choices": choices, "digest": digest, "flag": flag, "short": short,
            "bounds": None if lo is None and hi is None else (lo, hi, lo_open, hi_open), "prefix": prefix,
            "model_defaults": model_defaults, "cli": cli}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Hparams:
    """Base class: nested, typed, validated, digestable."""

    def validate(self) -> None:
        """Raise `UsageError` for out-of-range values. Subclasses extend."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            choices = f.metadata.get("choices")
            if choices and value not in choices and not (value is None and None in choices):
                raise UsageError(f"{f.name} must be one of {', '.join(map(str, choices))}; got {value!r}.")
            bounds = f.metadata.get("bounds")
            if bounds and isinstance(value, (int, float)) and not isinstance(value, bool):
                lo, hi, lo_open, hi_open = bounds
                check_range(f.name, value, -math.inf if lo is None else lo, math.inf if hi is None else hi,
                            lo_open, hi_open)
        self.validate()

    def to_dict(self) -> dict[str, Any]:
        """Every field, nested dataclasses as dicts."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    def non_default(self) -> dict[str, Any]:
        """Only the fields that differ from their defaults and count for the digest."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.metadata.get("digest", True) is False:
                continue
            value = getattr(self, f.name)
            if isinstance(value, Hparams):
                sub = value.non_default()
                if sub:
                    out[f.name] = sub
            elif value != _default_of(f):
                out[f.name] = _plain(value)
        return out

    def digest(self) -> str:
        """Ten hex characters of sha256 over the class name and the non-default fields."""
        payload = json.dumps({"kind": type(self).__name__, "hp": self.non_default()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:10]

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str = "") -> Self:
        """Build from a (possibly partial) dict; unknown keys and wrong types raise `UsageError`."""
        hints = typing.get_type_hints(cls)
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            where = f"{path}{key}"
            if key not in known:
                raise UsageError(f"unknown setting '{where}'. Valid settings here: {', '.join(known)}.")
            kwargs[key] = _coerce(hints[key], value, where)
        return cls(**kwargs)

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def with_setting(self, dotted: str, raw: Any, _prefix: str = "") -> Self:
        """A copy with one nested setting changed: `train.lr=0.1`-style, values coerced to the field's type."""
        head, _, rest = dotted.partition(".")
        known = {f.name: f for f in fields(self)}
        if head not in known:
            raise UsageError(f"unknown setting '{_prefix}{dotted}'. Valid settings here: "
                             f"{', '.join(_prefix + k for k in known)}.")
        current = getattr(self, head)
        if rest:
            if not isinstance(current, Hparams):
                raise UsageError(f"setting '{_prefix}{head}' has no sub-settings (got '{_prefix}{dotted}').")
            return self.replace(**{head: current.with_setting(rest, raw, f"{_prefix}{head}.")})
        hint = typing.get_type_hints(type(self))[head]
        value = _parse_scalar(raw) if isinstance(raw, str) and hint is not str else raw
        return self.replace(**{head: _coerce(hint, value, _prefix + dotted)})

    def updated(self, tree: dict[str, Any], _prefix: str = "") -> Self:
        """A copy with a (nested, possibly partial) tree of settings applied at once, then validated once per
        group, so rules that tie two fields (rewind=iter needs rewind_iter) see both new values. Keys may be
        dotted (`train.lr`); string values are parsed for non-string fields (`--set` items)."""
        changes: dict[str, Any] = {}
        hints = typing.get_type_hints(type(self))
        known = {f.name for f in fields(self)}
        for key, raw in _nest(tree, _prefix).items():
            where = f"{_prefix}{key}"
            if key not in known:
                raise UsageError(f"unknown setting '{where}'. Valid settings here: "
                                 f"{', '.join(_prefix + k for k in sorted(known))}.")
            current = getattr(self, key)
            if isinstance(current, Hparams) and isinstance(raw, dict):
                changes[key] = current.updated(raw, f"{where}.")
            elif isinstance(current, Hparams):
                raise UsageError(f"setting '{where}' is a group of settings ({', '.join(current.to_dict())}); "
                                 f"set one of them, e.g. {where}.{next(iter(current.to_dict()))}=...")
            elif isinstance(raw, dict):
                raise UsageError(f"setting '{where}' has no sub-settings (got {', '.join(raw)}).")
            else:
                hint = hints[key]
                value = _parse_scalar(raw) if isinstance(raw, str) and hint is not str else raw
                changes[key] = _coerce(hint, value, where)
        return self.replace(**changes) if changes else self

    @classmethod
    def leaves(cls, prefix: str = "") -> list[tuple[str, dataclasses.Field, Any, list[dataclasses.Field]]]:
        """(dotted name, field, default, enclosing group fields) of every scalar setting, in declaration order."""
        out = []
        default = cls()
        for f in fields(cls):
            value = getattr(default, f.name)
            if isinstance(value, Hparams):
                for name, leaf, _, parents in type(value).leaves(f"{prefix}{f.name}."):
                    # a group's own default instance may differ from its class defaults (e.g. selection=global)
                    out.append((name, leaf, _dig(value, name[len(prefix) + len(f.name) + 1:]), [f, *parents]))
            else:
                out.append((prefix + f.name, f, value, []))
        return out


def _dig(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _nest(tree: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Dotted keys -> nested dicts (`{"train.lr": 1}` -> `{"train": {"lr": 1}}`), merged with nested ones."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        head, _, rest = str(key).partition(".")
        if rest:
            sub = out.setdefault(head, {})
            if not isinstance(sub, dict):
                raise UsageError(f"setting '{prefix}{head}' is given both as a value and as a group.")
            sub[rest] = value
        elif isinstance(value, dict) and isinstance(out.get(head), dict):
            out[head].update(value)
        else:
            out[head] = value
    return out


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _plain(value: Any) -> Any:
    if isinstance(value, Hparams):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _parse_scalar(raw: str) -> Any:
    """Parse a command-line value: JSON when it parses (numbers, lists, true/false), else the string."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        if "," in raw:
            return [_parse_scalar(p) for p in raw.split(",") if p]
        return raw


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if isinstance(hint, type) and issubclass(hint, Hparams):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise UsageError(f"setting '{where}' must be a table of settings, got {value!r}.")
        return hint.from_dict(value, path=f"{where}.")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, where)
            except UsageError as e:
                errors.append(str(e))
        raise UsageError(errors[0] if errors else f"setting '{where}' has an invalid value {value!r}.")
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)) and [str(v).lower() for v in value] == ["none"]:
            value = []  # `--controls none`: an empty list from the command line
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"setting '{where}' must be a list, got {value!r}.")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if len(args) != len(value):
            raise UsageError(f"setting '{where}' must have {len(args)} items, got {value!r}.")
        return tuple(_coerce(a, v, where) for a, v in zip(args, value, strict=True))
    if origin is typing.Literal:
        if value not in args:
            raise UsageError(f"setting '{where}' must be one of {', '.join(map(str, args))}; got {value!r}.")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"setting '{where}' must be a number, got {value!r}.")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise UsageError(f"setting '{where}' must be an integer, got {value!r}.")
        return int(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise UsageError(f"setting '{where}' must be true or false, got {value!r}.")
        return value
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise UsageError(f"setting '{where}' must be a string, got {value!r}.")
        return str(value)
    return value


def check_range(name: str, value: float, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> None:
    """Raise `UsageError` when `value` is outside [lo, hi] (brackets per the open flags); infinite ends read as
    one-sided rules ("must be >= 1")."""
    bad = value < lo or value > hi or (lo_open and value == lo) or (hi_open and value == hi) or value != value
    if not bad:
        return
    if math.isinf(hi) and not math.isinf(lo):
        rule = f"{'>' if lo_open else '>='} {lo:g}"
    elif math.isinf(lo) and not math.isinf(hi):
        rule = f"{'<' if hi_open else '<='} {hi:g}"
    else:
        rule = f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    raise UsageError(f"{name} must be {rule}, got {value}.")


__all__ = ["Hparams", "NO_DIGEST", "check_range", "field", "setting"]
