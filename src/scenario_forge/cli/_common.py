"""What every command shares: one-line errors, non-zero exits, and building typed configs."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
import yaml
from pydantic import BaseModel, ValidationError
from rich.console import Console

from .._validation import one_line
from ..errors import ForgeError
from ..redact import redact

console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)


def fail(message: str, code: int = 2) -> None:
    """Print ``error: message`` on one line (secrets redacted) and exit non-zero."""
    print(f"error: {' '.join(redact(message).split())}", file=sys.stderr)
    raise typer.Exit(code)


def guarded(func: F) -> F:
    """Turn our errors, config validation errors and Ctrl-C into one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ForgeError as exc:
            fail(str(exc), exc.exit_code)
        except ValidationError as exc:
            fail(one_line(exc), 2)
        except KeyboardInterrupt:
            fail("interrupted; finished shards are on disk and a rerun resumes from them", 130)
        except OSError as exc:  # a read-only --out, a full disk: what finished is on disk
            where = f": {exc.filename}" if exc.filename else ""
            fail(f"{exc.strerror or exc}{where}", 1)
        return None

    return wrapper  # type: ignore[return-value]


def as_json(result: Any) -> Any:
    """A job's result as plain JSON data, whether a flow returned its typed record or a dict."""
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    if isinstance(result, list):
        return [as_json(item) for item in result]
    return result


def load_yaml_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if not path.is_file():
        raise ForgeError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ForgeError(f"{path}: malformed YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ForgeError(f"{path}: expected a mapping of config fields")
    return data


def build_config(
    model: type[M], file: Path | None, overrides: dict[str, Any], flags: dict[str, str] | None = None
) -> M:
    """A config from an optional YAML file with the CLI flags that were given laid over it.

    ``overrides`` keys may be dotted (``backend.kind``); ``None`` values mean "flag not given".
    ``flags`` maps those keys to the flag names used in error messages (``n`` -> ``--n``).
    """
    data = load_yaml_config(file)
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):  # absent, or an empty `backend:` in the YAML
                if node.get(part) is not None:
                    raise ForgeError(f"{file}: {part!r} must be a mapping of fields")
                node[part] = {}
            node = node[part]
        node[leaf] = value
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        loc = ".".join(str(p) for p in exc.errors()[0].get("loc", ()))
        # the flag that set the failing field, or the first given flag inside a failing nested config
        # (``--model`` for ``backend: model 'x' not found``)
        named = [p for p in overrides if overrides[p] is not None and (p == loc or p.startswith(f"{loc}."))]
        if flags and named and named[0] in flags:
            first = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise ForgeError(f"{flags[named[0]]}: {first}") from None
        raise ForgeError(one_line(exc, str(file) if file else "")) from None
