"""Where the shipped taxonomy, prompts, recipes, packs and labelled sets live.

In a source checkout (``src/scenario_forge`` next to ``pyproject.toml``) they are the top-level
``taxonomy/``, ``prompts/``, ``recipes/``, ``packs/`` and ``labelled/`` folders users edit; an installed
wheel carries copies under ``scenario_forge/_resources/`` (pyproject.toml's hatch ``force-include``),
so nothing is looked up next to site-packages.

>>> resource_dir("taxonomy").name
'taxonomy'
>>> resource_dir("nothing")
Traceback (most recent call last):
...
FileNotFoundError: shipped resource folder 'nothing' not found (looked in ...)
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
NAMES = ("taxonomy", "prompts", "recipes", "packs", "labelled")


def _search_roots(package: Path) -> list[Path]:
    """The folders that may hold the shipped resources, for the package folder ``package``.

    The checkout's top level counts only when the package sits in its ``src/`` layout; otherwise
    (an installed wheel) only the copies inside the package do.

    >>> [p.as_posix() for p in _search_roots(Path("/venv/lib/python3.11/site-packages/scenario_forge"))]
    ['/venv/lib/python3.11/site-packages/scenario_forge/_resources']
    """
    roots = [package / "_resources"]
    checkout = package.parent.parent
    if package.parent.name == "src" and (checkout / "pyproject.toml").is_file():
        roots.insert(0, checkout)
    return roots


def resource_dir(name: str) -> Path:
    """The folder holding the shipped ``name`` (one of :data:`NAMES`)."""
    roots = _search_roots(_PACKAGE)
    for root in roots if name in NAMES else []:
        if (root / name).is_dir():
            return root / name
    looked = ", ".join(str(root / name) for root in roots)
    raise FileNotFoundError(f"shipped resource folder {name!r} not found (looked in {looked})")


def default_outputs_dir() -> Path:
    """``outputs/`` in the current directory: runs land where the user is working."""
    return Path.cwd() / "outputs"
