"""Method commands, generated: every `lottery <command>` is a one-stage pipeline of one method.

Flags come from the method's settings dataclass (`compress.hparams.setting` metadata: help, choices, flag
name, short alias, group prefix) and from `compress.method.Scope`; nothing here lists an option by hand.
Defaults shown in `--help` are the dataclass's own. Given flags (and `--set KEY=VALUE`, `--gate NAME=VALUE`)
become the same raw tree a TOML `[[stages]]` table is, resolved by `pipelines.spec` like any pipeline stage.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from pathlib import Path
from typing import Any, Literal

import typer

from compress.errors import UsageError
from compress.hparams import Hparams
from compress.method import INPUT_SCOPE, Method, Scope

SCOPE_PANEL, SETTINGS_PANEL, RUN_PANEL = "Model, data and seed", "Settings", "Output"
PARALLEL_PANEL = "Data-parallel (torch.distributed)"


@dataclasses.dataclass(frozen=True)
class Flag:
    param: str        # python parameter name
    dotted: str       # settings path (`train.lr`) or scope field
    names: tuple[str, ...]
    annotation: Any
    default: Any
    help: str
    panel: str


def show(value: Any) -> str:
    """How a dataclass default is printed in `--help` (and compared in the tests)."""
    if value is INPUTS_OWN:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or value == ():
        return "none"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def _annotation(hint: Any, choices: tuple[Any, ...] | None) -> Any:
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin is tuple:
        return list[args[0]] | None  # type: ignore[valid-type]
    base = args[0] if args else hint
    if choices:
        return Literal[tuple(c for c in choices if c is not None)] | None  # type: ignore[misc]
    return base | None


def flags_for(cls: type[Hparams], prefix_path: str = "", panel: str = SETTINGS_PANEL,
              only: tuple[str, ...] | None = None) -> list[Flag]:
    """One flag per scalar setting of `cls` (groups flattened with their prefix), in declaration order."""
    hints_cache: dict[type, dict[str, Any]] = {}
    out = []
    for dotted, f, default, parents in cls.leaves(prefix_path):
        if (only is not None and dotted not in only) or f.metadata.get("cli") is False:
            continue
        owner = type(_owner(cls, dotted[len(prefix_path):]))
        hints = hints_cache.setdefault(owner, typing.get_type_hints(owner))
        prefix = "".join(p.metadata.get("prefix") if p.metadata.get("prefix") is not None
                         else f"{p.name.replace('_', '-')}-" for p in parents)
        name = f"--{prefix}{f.metadata.get('flag') or f.name.replace('_', '-')}"
        names = (name,) + ((f"-{f.metadata['short']}",) if f.metadata.get("short") else ())
        if hints[f.name] is bool:
            names = (f"{name}/--no-{name[2:]}",) + names[1:]
        choices = f.metadata.get("choices")
        group = f"{panel}: {parents[-1].name}" if parents and panel == SETTINGS_PANEL else panel
        out.append(Flag("p_" + dotted.replace(".", "__"), dotted, names, _annotation(hints[f.name], choices),
                        default, f.metadata.get("help", ""), group))
    return out


def _owner(cls: type[Hparams], dotted: str) -> Any:
    obj: Any = cls()
    for part in dotted.split(".")[:-1]:
        obj = getattr(obj, part)
    return obj


def check_unique(flags: list[Flag], where: str) -> None:
    seen: dict[str, str] = {}
    for fl in flags:
        for n in fl.names:
            for part in n.split("/"):
                if part in seen:
                    raise RuntimeError(f"{where}: flag {part} is generated for both {seen[part]} and {fl.dotted}")
                seen[part] = fl.dotted


def method_flags(m: Method) -> tuple[list[Flag], list[Flag]]:
    """(scope flags, settings flags) of a method's command."""
    only = INPUT_SCOPE if m.needs else m.scope_flags
    settings = flags_for(m.settings, "", SETTINGS_PANEL)
    own = {n for f in settings for n in f.names}  # a method's own setting wins over a scope flag of the same name
    scope = [f for f in flags_for(Scope, "", SCOPE_PANEL, only=tuple(only)) if not set(f.names) & own]
    if m.needs:  # a method given a ticket or artifact works in the scope it was made in unless told otherwise
        scope = [dataclasses.replace(f, default=INPUTS_OWN) if f.dotted in ("dataset", "seed") else f for f in scope]
    common = COMMON_NAMES + ([("--level",)] if takes_ticket(m) else [])
    check_unique(scope + settings + [Flag("", "", n, None, None, "", "") for n in common], f"lottery {m.name}")
    return scope, settings


INPUTS_OWN = "the input's"
COMMON_NAMES = [("--set",), ("--gate",), ("--out", "-o"), ("--json",), ("--quiet", "-q"), ("--debug",),
                ("--trust-code",), ("--nproc",), ("--nnodes",), ("--rdzv-endpoint",)]


def parallel_options() -> list[tuple[str, Any, Any]]:
    """`--nproc`, `--nnodes`, `--rdzv-endpoint`: the same command run data-parallel (pipelines.cli.launch)."""
    return [
        ("nproc", int | None, typer.Option(None, "--nproc", rich_help_panel=PARALLEL_PANEL, show_default="1", help=(
            "Processes on this machine: relaunch this command through torch.distributed.run, every training "
            "data-parallel (gloo on CPU, nccl on CUDA); rank 0 alone writes the run directory."))),
        ("nnodes", int | None, typer.Option(None, "--nnodes", rich_help_panel=PARALLEL_PANEL, show_default="1",
                                            help="Machines in the job (run the same command on each).")),
        ("rdzv_endpoint", str | None, typer.Option(None, "--rdzv-endpoint", rich_help_panel=PARALLEL_PANEL, help=(
            "HOST:PORT of the first machine, the same on every machine (needed with --nnodes > 1)."))),
    ]


def takes_ticket(m: Method) -> bool:
    from pipelines.artifacts import TICKET_KINDS

    return bool(m.needs) and bool(set(m.needs[0].split("|")) & set(TICKET_KINDS))


def _param(fl: Flag) -> inspect.Parameter:
    opt = typer.Option(None, *fl.names, help=fl.help, show_default=show(fl.default), rich_help_panel=fl.panel)
    return inspect.Parameter(fl.param, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=fl.annotation)


def _common(m: Method) -> list[inspect.Parameter]:
    kw = inspect.Parameter.KEYWORD_ONLY
    opts: list[tuple[str, Any, Any]] = [
        ("set_", list[str] | None, typer.Option(None, "--set", help="Any setting as KEY=VALUE (repeatable), e.g. "
                                                "train.momentum=0.8.", rich_help_panel=SETTINGS_PANEL)),
        ("gate", list[str] | None, typer.Option(None, "--gate", help="A gate NAME=VALUE (repeatable), added to the "
                                                "method's default gates; see `lottery presets --stages`.",
                                                rich_help_panel=SETTINGS_PANEL)),
        ("out", Path | None, typer.Option(None, "--out", "-o", rich_help_panel=RUN_PANEL, help=(
            "Folder under which the run directory is made (default: the input's folder)." if m.needs else
            "Root folder for run directories (default: runs)."))),
        ("as_json", bool, typer.Option(False, "--json", help="Print report.json to stdout.",
                                       rich_help_panel=RUN_PANEL)),
        ("quiet", bool, typer.Option(False, "--quiet", "-q", help="Only warnings and the final table.",
                                     rich_help_panel=RUN_PANEL)),
        ("debug", bool, typer.Option(False, "--debug", help="Show the traceback of an unexpected error.",
                                     rich_help_panel=RUN_PANEL)),
        ("trust_code", bool, typer.Option(False, "--trust-code", rich_help_panel=RUN_PANEL, help=(
            "Allow importing a module:factory model named inside the input's run directory (like unpickling: "
            "it runs that module's code)."))),
    ]
    params = [inspect.Parameter(n, kw, default=d, annotation=a) for n, a, d in opts + parallel_options()]
    if takes_ticket(m):
        params.insert(0, inspect.Parameter("level", kw, annotation=int | None, default=typer.Option(
            None, "--level", help="Level to take from a run directory (default: its selected level).",
            rich_help_panel=SCOPE_PANEL)))
    return params


def make_command(m: Method) -> Any:
    """The typer command function of method `m` (its signature is generated from the settings)."""
    scope_flags, setting_flags = method_flags(m)
    params: list[inspect.Parameter] = []
    if m.needs:
        from pipelines.artifacts import _what

        what = _what(m.needs[0].split("|"))
        params.append(inspect.Parameter("input_path", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Path,
                                        default=typer.Argument(..., metavar="INPUT", show_default=False,
                                                               help=f"What to start from: {what}.")))
    params += [_param(f) for f in scope_flags + setting_flags] + _common(m)

    def command(**kw: Any) -> None:
        from pipelines.cli import launch
        from pipelines.cli.run_method import run_method

        if launch.requested(kw.get("nproc"), kw.get("nnodes"), kw.get("rdzv_endpoint")):
            raise typer.Exit(launch.relaunch(kw.get("nproc"), kw.get("nnodes"), kw.get("rdzv_endpoint")))
        given_scope = {f.dotted: kw[f.param] for f in scope_flags if kw.get(f.param) is not None}
        given = {f.dotted: _plain(kw[f.param]) for f in setting_flags if kw.get(f.param) is not None}
        for item in kw.get("set_") or []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--set needs KEY=VALUE, got '{item}'.")
            given[key.strip()] = value.strip()
        run_method(m, given_scope, given, kw.get("gate") or [], kw.get("input_path"), kw.get("level"), kw["out"],
                   kw["as_json"], kw["quiet"], kw["trust_code"])

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__name__ = m.name
    command.__doc__ = f"{m.summary}\n\n{m.doc}".strip()
    return command


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def register_all(app: typer.Typer, groups: dict[str, typer.Typer], argv: list[str] | None = None) -> None:
    """Attach every method that has a command to `app` or to its group (`find`, `export`, `deploy`).

    Start-up: only the command being invoked (read from `argv`) gets its generated options; the others are
    listed by name and summary, which is all `--help` of a group shows. `argv=None` builds every command."""
    from pipelines import registry
    from pipelines.cli.common import friendly

    for m in registry.all_methods():
        if not m.command:
            continue
        *group, word = m.command
        target = groups[group[0]] if group else app
        if argv is not None and list(argv[: len(m.command)]) != list(m.command):
            target.command(word, help=f"{m.summary}\n\n{m.doc}".strip(), short_help=m.summary)(_listed_only)
            continue
        fn = friendly(make_command(m))
        target.command(word, help=fn.__doc__, short_help=m.summary)(fn)


def _listed_only() -> None:  # pragma: no cover - never invoked: the invoked command is always built in full
    raise RuntimeError("a command listed for --help was invoked without being built")
