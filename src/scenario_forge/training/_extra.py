"""Imports from the ``[train]`` extra, failing with a message that names the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import MissingExtraError

#: import name -> pip package name, for the error message
_PACKAGES = {"transformers": "transformers", "trl": "trl", "gguf": "gguf", "accelerate": "accelerate", "torch": "torch"}


def require(module: str, what: str) -> ModuleType:
    """``importlib.import_module(module)``, or a :class:`MissingExtraError` naming ``[train]``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".", 1)[0]
        raise MissingExtraError(_PACKAGES.get(top, top), "train", what) from None
