"""Where the shipped taxonomy, prompts and recipes live.

In a source checkout they are the top-level ``taxonomy/``, ``prompts/`` and ``recipes/`` folders
users edit; an installed wheel carries copies under ``scenario_forge/_resources/``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_REPO = _PACKAGE.parent.parent


def resource_dir(name: str) -> Path:
    """The folder holding the shipped ``name`` (``taxonomy``, ``prompts``, ``recipes``, ``packs`` or ``labelled``)."""
    for candidate in (_REPO / name, _PACKAGE / "_resources" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"shipped resource folder {name!r} not found next to {_PACKAGE}")


def default_outputs_dir() -> Path:
    """``outputs/`` in the current directory: runs land where the user is working."""
    return Path.cwd() / "outputs"
