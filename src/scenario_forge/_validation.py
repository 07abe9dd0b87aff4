"""Turn pydantic validation errors into the one-line messages the CLI prints."""

from __future__ import annotations

from pydantic import ValidationError


def one_line(error: ValidationError, where: str = "") -> str:
    """``"recipe.yaml: ratio: Input should be less than 1 (and 2 more errors)"``."""
    errors = error.errors()
    first = errors[0]
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
    msg = first.get("msg", "invalid value").removeprefix("Value error, ")
    text = f"{loc}: {msg}" if loc else msg
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return f"{where}: {text}" if where else text
