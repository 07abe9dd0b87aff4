"""Reading pydantic field annotations: shared by everything derived from the records and configs
(parquet schemas in :mod:`scenario_forge.parquet`, CLI options in :mod:`scenario_forge.cli.options`).

>>> from typing import Optional
>>> without_none(int | None), without_none(Optional[str]), without_none(list[int])
(<class 'int'>, <class 'str'>, list[int])
>>> without_none(int | str | None)
int | str | None
"""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin


def without_none(annotation: Any) -> Any:
    """``X | None`` (or ``Optional[X]``) -> ``X``; any other annotation unchanged."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation
