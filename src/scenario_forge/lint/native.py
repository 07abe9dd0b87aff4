"""The compiled copy of lint's detectors: the same source, compiled to C by mypyc, used when it is
built and matches the source.

``scripts/build_native_lint.py`` (run by ``scripts/setup.sh``) copies :data:`COMPILED` into a package
named :data:`PACKAGE`, compiles them with mypyc, and installs the result into the environment's
site-packages with :func:`source_hash` of the sources it was built from. :func:`native_scenario`
returns that copy's ``scenario`` module only when the hash still matches the source beside this file;
otherwise (not built, no compiler, a source edited since the build, or ``SCENARIO_FORGE_LINT=python``)
it returns ``None`` and lint runs the Python source as it is. Output is the same either way:
``tests/test_lint_native.py`` compares the two on the labelled set and its mutations.

:data:`SHARED` modules are not compiled: the copy re-exports them from this package, so that
:class:`~scenario_forge.lint.findings.LintResult` and
:class:`~scenario_forge.lint.brief.BriefWords` are one class whichever copy runs.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import logging
import os
import shutil
import sysconfig
from pathlib import Path
from types import ModuleType
from typing import Final

#: The detector modules compiled, in import order.
COMPILED: Final = ("text", "turns", "rubric", "leak", "flaw", "scenario")
#: Modules the compiled copy imports from this package instead of compiling.
SHARED: Final = ("findings", "brief")
#: The compiled copy's top-level package name.
PACKAGE: Final = "_scenario_forge_lintc"
#: ``SCENARIO_FORGE_LINT=python`` turns the compiled copy off.
ENV: Final = "SCENARIO_FORGE_LINT"

_HERE: Final = Path(__file__).resolve().parent
log = logging.getLogger(__name__)


def source_hash(folder: Path = _HERE) -> str:
    """SHA-256 of the compiled and shared modules' sources in ``folder``, in a fixed order."""
    digest = hashlib.sha256()
    for name in (*COMPILED, *SHARED):
        digest.update(name.encode() + b"\0")
        digest.update((folder / f"{name}.py").read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def missing_build_tool() -> str | None:
    """What ``scripts/build_native_lint.py`` would lack on this machine (mypyc, a C compiler, the
    Python headers), or ``None``."""
    if importlib.util.find_spec("mypyc") is None:
        return "mypyc is not installed (it comes with mypy: pip install -e '.[dev]')"
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler!r} not found)"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return "the Python headers (Python.h) are not installed"
    return None


def is_current(package: str = PACKAGE, folder: Path = _HERE) -> bool:
    """Whether ``package`` is installed and was built from the sources now in ``folder``."""
    try:
        built = importlib.import_module(package)
    except ImportError:
        return False
    return getattr(built, "SOURCE_HASH", None) == source_hash(folder)


def load_native(package: str = PACKAGE, folder: Path = _HERE) -> ModuleType | None:
    """The compiled ``scenario`` module of ``package`` when it is installed and was built from the
    sources now in ``folder``; ``None`` (and one log line saying why) otherwise."""
    if os.environ.get(ENV, "").strip().lower() == "python":
        return None
    try:
        built = importlib.import_module(package)
    except ImportError:
        return None  # not built: the ordinary case without a C compiler
    if getattr(built, "SOURCE_HASH", None) != source_hash(folder):
        log.warning(
            "lint: the compiled detectors (%s) were built from other sources; running the Python ones "
            "(rebuild: python scripts/build_native_lint.py)", getattr(built, "__file__", package),
        )
        return None
    try:
        return importlib.import_module(f"{package}.scenario")
    except ImportError as exc:  # built for another interpreter, or a partial install
        log.warning("lint: the compiled detectors do not load (%s); running the Python ones", exc)
        return None


@functools.cache
def native_scenario() -> ModuleType | None:
    """:func:`load_native` for the installed copy, once per process."""
    return load_native()
