"""Prompts are Jinja files in ``prompts/``, rendered through one function with ``StrictUndefined``
in Jinja's sandbox (:mod:`scenario_forge.templating`): a prompts folder cannot run code.

A template renders to a chat. Lines ``[system]`` and ``[user]`` (alone on a line) start the
messages; text before any marker is a user message. The hash of every template used goes into the
provenance of the rows it produced.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Any

from . import templating
from .errors import ConfigError
from .hashing import sha256_hex
from .records import Message
from .resources import resource_dir

_MARKER = re.compile(r"^\[(system|user|assistant)\]\s*$", re.MULTILINE)


class PromptSet:
    """The templates in one folder (default: the shipped ``prompts/``)."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else resource_dir("prompts")
        if not self.folder.is_dir():
            raise ConfigError(f"prompts folder not found: {self.folder}")
        self._env = templating.sandboxed_environment(
            self.folder, keep_trailing_newline=False, trim_blocks=True, lstrip_blocks=True
        )

    @cached_property
    def hashes(self) -> dict[str, str]:
        """``{template name: sha256[:16]}`` of every template in the folder."""
        return {
            p.name: sha256_hex(p.read_bytes())[:16] for p in sorted(self.folder.glob("*.j2"))
        }

    def hash_of(self, names: list[str]) -> dict[str, str]:
        return {n: self.hashes[n] for n in names}

    def render_text(self, name: str, **variables: Any) -> str:
        if not (self.folder / name).is_file():
            raise ConfigError(f"prompt template not found: {self.folder / name}")
        template = templating.load(self._env, name, self.folder / name)
        return templating.render(template, self.folder / name, **variables).strip()

    def render(self, name: str, **variables: Any) -> list[Message]:
        """Render ``name`` to chat messages."""
        text = self.render_text(name, **variables)
        parts = _MARKER.split(text)
        messages: list[Message] = []
        if parts[0].strip():
            messages.append(Message(role="user", content=parts[0].strip()))
        for role, content in zip(parts[1::2], parts[2::2]):
            if content.strip():
                messages.append(Message(role=role, content=content.strip()))  # type: ignore[arg-type]
        if not messages:
            raise ConfigError(f"prompt template {name} rendered to an empty prompt")
        return messages
