"""Every Jinja template we render goes through Jinja's sandbox.

Prompt folders, taxonomies and recipes are data that people share, so a template must not be able
to run code. :func:`sandboxed_environment` is :class:`jinja2.sandbox.ImmutableSandboxedEnvironment`
with ``StrictUndefined``: dunder attributes, ``__globals__`` and friends, and methods that change
lists or dicts are out of reach. :func:`render` turns every template problem (syntax, an undefined
variable, a sandbox violation) into one :class:`~scenario_forge.errors.ConfigError` naming the file.

>>> render(sandboxed_environment().from_string("{{ x | upper }}"), "inline.j2", x="ok")
'OK'
>>> render(sandboxed_environment().from_string("{{ ''.__class__.__mro__ }}"), "bad.j2")
Traceback (most recent call last):
...
scenario_forge.errors.ConfigError: template bad.j2 reaches outside the sandbox: access to attribute '__class__' of 'str' object is unsafe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import ConfigError


def sandboxed_environment(folder: str | Path | None = None, **options: Any) -> ImmutableSandboxedEnvironment:
    """A sandboxed environment with ``StrictUndefined``, loading templates from ``folder`` if given."""
    loader = jinja2.FileSystemLoader(str(folder)) if folder is not None else None
    options.setdefault("autoescape", False)
    return ImmutableSandboxedEnvironment(loader=loader, undefined=jinja2.StrictUndefined, **options)


def load(env: jinja2.Environment, name: str, where: str | Path | None = None) -> jinja2.Template:
    """``env.get_template(name)``; a missing or malformed template is one ``ConfigError``."""
    label = str(where or name)
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound:
        raise ConfigError(f"template not found: {label}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"template {label}:{exc.lineno}: {exc.message}") from None


def render(template: jinja2.Template, where: str | Path, **variables: Any) -> str:
    """Render ``template``; ``where`` (its file) names it in the one-line error."""
    try:
        return template.render(**variables)
    except SecurityError as exc:
        raise ConfigError(f"template {where} reaches outside the sandbox: {exc}") from None
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"template {where} uses an undefined variable: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise ConfigError(f"template {where}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a template's own runtime error (1/0, a bad call), not ours
        raise ConfigError(f"template {where} failed to render: {type(exc).__name__}: {exc}") from None
