"""Every docstring example under ``src/scenario_forge`` runs in CI, and none is silently left out.

Modules are found by walking the files (not ``pkgutil``: several subpackages have no
``__init__.py`` and would be missed). Each module whose docstrings hold examples is imported and its
examples run with :class:`doctest.DocTestRunner`; a module that needs an optional extra which is not
installed is skipped with the extra named in the reason (``pytest -rs`` shows it). The coverage
checks then count the examples two independent ways, from the source (every docstring ``ast`` finds,
nested functions included) and from what :class:`doctest.DocTestFinder` collects, and fail if they
differ: an example in a nested function, a decorated function whose wrapper lives elsewhere, or a
string that only looks like a docstring would otherwise never run.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import re
from functools import cache
from pathlib import Path

import pytest
from helpers import REPO

from scenario_forge.errors import MissingExtraError

SRC = REPO / "src"
PACKAGE = SRC / "scenario_forge"

#: import name of an optional dependency -> the extra that installs it (pyproject.toml)
OPTIONAL = {
    "vllm": "gpu", "transformers": "train", "trl": "train", "gguf": "train", "accelerate": "train",
    "distilabel": "distilabel", "prefect_dask": "dask", "prefect_ray": "ray",
}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
_PROMPT = re.compile(r"^\s*>>>", re.MULTILINE)


def module_name(path: Path) -> str:
    """``src/scenario_forge/a/b.py`` -> ``scenario_forge.a.b`` (``__init__`` -> the package)."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def source_files() -> tuple[Path, ...]:
    return tuple(sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts))


def docstring_examples(path: Path) -> int:
    """Examples in every docstring of the file (module, classes, functions at any depth), by ``ast``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parser = doctest.DocTestParser()
    nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    return sum(len(parser.get_examples(doc)) for n in nodes if (doc := ast.get_docstring(n, clean=False)))


@cache
def modules_with_examples() -> tuple[str, ...]:
    return tuple(module_name(p) for p in source_files() if docstring_examples(p))


def import_or_skip(name: str):
    """The module, or a skip naming the extra when an optional dependency is not installed."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top in OPTIONAL:
            pytest.skip(f"{name} needs the [{OPTIONAL[top]}] extra: {top} is not installed")
        raise
    except MissingExtraError as exc:
        pytest.skip(f"{name}: {exc}")


def found_tests(module) -> list[doctest.DocTest]:
    return [t for t in doctest.DocTestFinder(exclude_empty=True).find(module) if t.examples]


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples_pass(name: str):
    module = import_or_skip(name)
    tests = found_tests(module)
    assert tests, f"{name} has docstring examples but doctest finds none"
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
    assert runner.tries == sum(len(t.examples) for t in tests)


@pytest.mark.parametrize("name", modules_with_examples())
def test_every_docstring_example_is_collected(name: str):
    """What doctest runs equals what the source holds: no example is out of doctest's reach."""
    path = next(p for p in source_files() if module_name(p) == name)
    module = import_or_skip(name)
    in_source = docstring_examples(path)
    collected = sum(len(t.examples) for t in found_tests(module))
    assert collected == in_source, (
        f"{path.relative_to(REPO)}: {in_source} docstring examples in the source, doctest collects {collected} "
        "(examples in a nested function or a function wrapped by another module's decorator never run: move them)"
    )


def test_module_census():
    """The walk sees every module (namespace subpackages included), and every file that shows a
    ``>>>`` prompt has it in a docstring that the tests above run."""
    assert module_name(PACKAGE / "curation" / "dedup.py") == "scenario_forge.curation.dedup"
    assert module_name(PACKAGE / "__init__.py") == "scenario_forge"
    files = source_files()
    names = [module_name(p) for p in files]
    assert len(names) == len(set(names)) == len(list(PACKAGE.rglob("*.py"))) - len(list(PACKAGE.rglob("__pycache__/*.py")))
    for sub in ("backends", "generation", "taxonomy"):  # no __init__.py: pkgutil would skip these
        assert any(n.startswith(f"scenario_forge.{sub}.") for n in names), sub
    with_prompts = {module_name(p) for p in files if _PROMPT.search(p.read_text(encoding="utf-8"))}
    assert with_prompts == set(modules_with_examples()), with_prompts ^ set(modules_with_examples())
    assert len(modules_with_examples()) >= 20  # 21 when this test was written; a drop means lost doctests
    print(f"{len(modules_with_examples())} of {len(names)} modules have docstring examples; all are run")


def test_census_sees_examples_doctest_would_miss(tmp_path: Path):
    """The two counts differ on a module whose only example sits in a nested function."""
    path = tmp_path / "nested.py"
    path.write_text('def outer():\n    def inner():\n        """\n        >>> 1 + 1\n        2\n        """\n    return inner\n')
    spec = importlib.util.spec_from_file_location("nested_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert docstring_examples(path) == 1 and sum(len(t.examples) for t in found_tests(module)) == 0
