"""Each command's options, derived from its config model; ``--config`` and ``--orchestrator``, once.

A field marked with :func:`scenario_forge.flags.flag` is an option of every command whose config
model holds it (through :func:`~scenario_forge.flags.group` marks on nested models): its help is the
field's ``description``, the default shown is the field's default, a ``Literal`` field lists its
choices in ``--help`` and to shell completion. A command is written as a function whose first
parameter receives a :class:`Given` (the flags given, the YAML file, the orchestrator); its other
parameters are the command's own options (``--plan-only``) and stay ordinary typer parameters.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, Optional, TypeVar, get_args, get_origin

import typer
from pydantic import BaseModel

from ..annotations import without_none
from ..errors import ConfigError
from ..flags import prefixed, read_mark
from ..modelspec import KINDS
from ._common import build_config, guarded

M = TypeVar("M", bound=BaseModel)
Orchestrator = Literal["direct", "prefect"]
ORCHESTRATORS: tuple[Orchestrator, ...] = get_args(Orchestrator)
#: Every command runs its stages in-process unless told otherwise (``--orchestrator prefect`` or this
#: environment variable): one default for every command, documented in docs/cli.md.
DEFAULT_ORCHESTRATOR: Orchestrator = "direct"
ORCHESTRATOR_ENV = "SCENARIO_FORGE_ORCHESTRATOR"


@dataclass(frozen=True)
class Choices:
    """A ``Literal`` field's choices: shown as the option's metavar in ``--help`` and offered to shell
    completion. Any value is passed on, so the config model rejects a wrong one in the project's
    one-line form (``error: --backend: Input should be ...``)."""

    values: tuple[str, ...]

    @property
    def metavar(self) -> str:
        return "[" + "|".join(self.values) + "]"

    def complete(self, ctx: Any, param: Any, incomplete: str) -> list[str]:
        """Shell completion: the choices that start with what was typed.

        >>> Choices(("direct", "prefect")).complete(None, None, "pr")
        ['prefect']
        """
        return [v for v in self.values if v.startswith(incomplete)]

    def option(self, *decls: str, **kwargs: Any) -> Any:
        """A ``typer.Option`` with these choices."""
        return typer.Option(*decls, metavar=self.metavar, shell_complete=self.complete, **kwargs)


#: The backend kinds, for the options that force one (``eval --model-backend``).
BACKEND_CHOICES = Choices(KINDS)


@dataclass(frozen=True)
class Option:
    """One command-line option (or argument) and the config field it sets."""

    path: str  #: dotted config path, e.g. ``backend.kind``
    decls: tuple[str, ...]  #: flag names, e.g. ``("--backend",)``; empty for an argument
    annotation: Any  #: the type typer sees (``Annotated[Optional[T], typer.Option(...)]``)

    @property
    def param(self) -> str:
        """The Python parameter name (``backend__kind``)."""
        return self.path.replace(".", "__")

    @property
    def flag(self) -> str:
        """The name an error message uses (``--judge`` for ``--judge/--no-judge``)."""
        return self.decls[0].split("/")[0]


def _typer_type(annotation: Any) -> tuple[Any, Choices | None]:
    """The type typer parses into, and a :class:`Choices` for ``Literal`` (and lists of them)."""
    inner = without_none(annotation)
    if get_origin(inner) is Literal:
        return str, Choices(tuple(str(v) for v in get_args(inner)))
    if get_origin(inner) is list:
        (item,) = get_args(inner)
        if get_origin(item) is Literal:
            return list[str], Choices(tuple(str(v) for v in get_args(item)))
    if get_origin(inner) is dict:
        return str, None  # a mapping is given as a JSON object; the config model parses it
    return inner, None


def _shown_default(info: Any) -> str | bool:
    if info.is_required():
        return False
    default = info.get_default(call_default_factory=True)
    if default is None or default in ([], {}) or isinstance(default, BaseModel):
        return False
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, list):
        return ", ".join(str(v) for v in default)
    return str(default)


def derive(
    model: type[BaseModel], prefix: str | None = None, only: list[str] | None = None, path: str = ""
) -> list[Option]:
    """The options of ``model``'s marked fields, nested groups included, in field order.

    >>> from scenario_forge.config import GenerateConfig
    >>> [o.decls for o in derive(GenerateConfig) if o.path.startswith("backend.")][:3]
    [('--backend',), ('--model',), ('--base-url',)]
    """
    options: list[Option] = []
    for name, info in model.model_fields.items():
        if only is not None and name not in only:
            continue
        mark = read_mark(info)
        if mark is None:
            continue
        dotted = f"{path}{name}"
        if mark.get("group"):
            nested = without_none(info.annotation)
            if not (isinstance(nested, type) and issubclass(nested, BaseModel)):
                raise TypeError(f"{model.__name__}.{name}: a group mark needs a nested config model")
            options += derive(nested, mark.get("prefix", prefix), mark.get("only"), f"{dotted}.")
            continue
        kind, choices = _typer_type(info.annotation)
        if mark.get("multiple"):
            kind = list[kind]  # type: ignore[valid-type]  # repeatable: the field's validator takes the list
        help_text = info.description or ""
        if mark.get("argument"):
            spec: Any = typer.Argument(help=help_text, show_default=False)
            options.append(Option(dotted, (), Annotated[Optional[kind], spec]))
            continue
        decls = tuple(prefixed(flag, prefix) for flag in mark["flags"])
        shown = _shown_default(info)
        if get_origin(without_none(info.annotation)) is dict:  # a mapping: given as a JSON object
            spec = typer.Option(*decls, help=help_text, show_default=shown, metavar="JSON")
        else:
            make = choices.option if choices else typer.Option
            spec = make(*decls, help=help_text, show_default=shown)
        options.append(Option(dotted, decls, Annotated[Optional[kind], spec]))
    return options


@dataclass(frozen=True)
class Given(Generic[M]):
    """What the command line said about a config: the flags given, the YAML file, the orchestrator."""

    model: type[M]
    file: Path | None
    values: dict[str, Any]  #: dotted config path -> value; None means "flag not given"
    flags: dict[str, str] = field(default_factory=dict)  #: dotted config path -> flag (error messages)
    orchestrator: Orchestrator = DEFAULT_ORCHESTRATOR

    def build(self, extra: dict[str, Any] | None = None) -> M:
        """The config: the YAML file with the given flags (and ``extra`` paths) laid over it."""
        return build_config(self.model, self.file, {**self.values, **(extra or {})}, self.flags)

    def given(self) -> list[str]:
        """The config paths whose flag was given, in option order."""
        return [path for path, value in self.values.items() if value is not None]


def run_job(orchestrator: Orchestrator, config: BaseModel, direct: str, flow: str) -> Any:
    """The job's typed result (a Manifest, MixtureMeta, ...): ``direct`` (``module:function``) in this
    process, or the Prefect flow ``flow`` (``module:function``), which runs the same steps as tasks.
    Both are imported only when chosen (Prefect takes seconds to import)."""
    from importlib import import_module

    module, _, name = (direct if orchestrator == "direct" else flow).partition(":")
    job = getattr(import_module(module), name)
    if orchestrator == "direct":
        return job(config)
    from ..orchestration.local_api import run_flow_from_cli

    return run_flow_from_cli(job, config=config)


def _orchestrator(value: str) -> Orchestrator:
    for choice in ORCHESTRATORS:
        if value == choice:
            return choice
    raise ConfigError(f"--orchestrator must be 'direct' or 'prefect', got {value!r}")


Command = Callable[..., None]


def config_command(model: type[M], *, orchestrated: bool = True) -> Callable[[Command], Command]:
    """Turn ``func(given: Given[M], **own_options)`` into a typer command with ``model``'s options,
    ``--config`` and (when ``orchestrated``) ``--orchestrator``; errors become one ``error:`` line."""
    options = derive(model)
    seen: dict[str, str] = {}
    for option in options:
        for decl in option.decls:
            for name in decl.split("/"):
                if name in seen:
                    raise TypeError(f"{model.__name__}: flag {name} set by both {seen[name]} and {option.path}")
                seen[name] = option.path

    def wrap(func: Command) -> Command:
        own = list(inspect.signature(func, eval_str=True).parameters.values())[1:]

        def keyword(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
            return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)

        params = [keyword(o.param, o.annotation) for o in options if not o.decls]
        params += [keyword(o.param, o.annotation) for o in options if o.decls]
        params += [keyword(p.name, p.annotation, p.default) for p in own]
        params.append(keyword("config", Annotated[Optional[Path], typer.Option(
            "--config", help=f"YAML file of {model.__name__} fields; flags override it.")]))
        if orchestrated:
            params.append(keyword("orchestrator", Annotated[str, Choices(ORCHESTRATORS).option(
                "--orchestrator", envvar=ORCHESTRATOR_ENV,
                help="direct: run the stages in this process; prefect: run the same stages as a Prefect flow "
                "(a temporary local server, or PREFECT_API_URL).")], DEFAULT_ORCHESTRATOR))

        @guarded
        def run(kwargs: dict[str, Any]) -> None:
            orchestrator = _orchestrator(kwargs.pop("orchestrator", DEFAULT_ORCHESTRATOR))
            values = {o.path: kwargs.pop(o.param) for o in options}
            file = kwargs.pop("config")
            flags = {o.path: o.flag for o in options if o.decls}
            func(Given(model, file, values, flags, orchestrator), **kwargs)

        @functools.wraps(func)
        def command(**kwargs: Any) -> None:
            run(kwargs)

        setattr(command, "__signature__", inspect.Signature(params))  # what typer reads  # noqa: B010
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return wrap
