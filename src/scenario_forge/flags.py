"""Command-line flags declared next to the config fields they set.

A config field becomes a command-line option by naming its flag in the field itself; the CLI
(:mod:`scenario_forge.cli.options`) reads these marks and builds each command's options from the
command's config model: help text from the field's ``description``, the default shown from the
field's default, choices from a ``Literal`` type. Adding an option is one edit, in the config model.

>>> from pydantic import BaseModel, Field
>>> class Demo(BaseModel):
...     n: int = Field(default=20, description="number of scenarios", json_schema_extra=flag("--n"))
>>> read_mark(Demo.model_fields["n"])
{'flags': ['--n']}

A nested model is exposed through its parent field with :func:`group`: its flagged fields appear
with an optional prefix (``--judge-`` + ``model`` = ``--judge-model``), optionally only some of them.

>>> prefixed("--base-url", "judge"), prefixed("--backend", None)
('--judge-base-url', '--backend')
"""

from __future__ import annotations

from typing import Any

from pydantic.fields import FieldInfo

#: The key under ``json_schema_extra`` that holds a field's command-line mark.
KEY = "cli"


def flag(*names: str, argument: bool = False, multiple: bool = False) -> dict[str, Any]:
    """Mark a field as the option ``names`` (``"--n"``, ``"--judge/--no-judge"``, ``"--domain", "-d"``),
    or, with ``argument=True``, as the command's positional argument. ``multiple=True``: the option
    may be given several times and the field receives the list (its validator reads it)."""
    mark: dict[str, Any] = {"argument": True} if argument else {"flags": list(names)}
    if multiple:
        mark["multiple"] = True
    return {KEY: mark}


def group(prefix: str | None = None, only: list[str] | None = None) -> dict[str, Any]:
    """Mark a nested-model field: its flagged fields become options, named with ``prefix`` inserted
    (``--backend`` -> ``--judge-backend``), all of them or ``only`` those named."""
    mark: dict[str, Any] = {"group": True}
    if prefix is not None:
        mark["prefix"] = prefix
    if only is not None:
        mark["only"] = list(only)
    return {KEY: mark}


def read_mark(info: FieldInfo) -> dict[str, Any] | None:
    """The command-line mark of a field, or None when the field is not an option."""
    extra = info.json_schema_extra
    if not isinstance(extra, dict):
        return None
    mark = extra.get(KEY)
    return dict(mark) if isinstance(mark, dict) else None


def prefixed(name: str, prefix: str | None) -> str:
    """``--backend`` under the prefix ``judge`` is ``--judge-backend``; short flags keep no prefix."""
    if prefix is None:
        return name
    return "/".join(f"--{prefix}-{part[2:]}" if part.startswith("--") else part for part in name.split("/"))
