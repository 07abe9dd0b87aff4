"""Compile lint's detectors with mypyc and install them beside the environment's packages.

    .venv/bin/python scripts/build_native_lint.py          # build when missing or out of date
    .venv/bin/python scripts/build_native_lint.py --force  # build again

``scripts/setup.sh`` runs it. The detector modules (:data:`scenario_forge.lint.native.COMPILED`) are
copied unchanged into a package ``_scenario_forge_lintc`` in a temporary folder; the modules they
share with the rest of the project (``findings``, ``brief``) become one-line re-exports; mypyc
compiles the copy (~35 s on 2 cores) and the result goes into site-packages with the SHA-256 of the
sources. Lint uses it only while that hash matches the source (:mod:`scenario_forge.lint.native`).

Exit 0 when built, already up to date, or skipped because mypyc, a C compiler or the Python
headers are missing (one line says which: lint then runs the Python source, slower, same output);
exit 1 when a compile that could run failed (a source mypyc cannot compile is a defect to fix).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))
os.environ["SCENARIO_FORGE_LINT"] = "python"  # importing scenario_forge.lint must not load (or warn about) the copy rebuilt here

from scenario_forge.lint.native import COMPILED, ENV, PACKAGE, SHARED, is_current, missing_build_tool, source_hash

LINT = SRC / "scenario_forge" / "lint"


def stage(folder: Path, digest: str) -> list[Path]:
    """The package to compile, in ``folder``; the paths of the modules to compile."""
    package = folder / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text(
        f'"""lint\'s detectors compiled by mypyc (scripts/build_native_lint.py)."""\n\nSOURCE_HASH = "{digest}"\n'
    )
    for name in SHARED:
        (package / f"{name}.py").write_text(f"from scenario_forge.lint.{name} import *  # noqa: F403\n")
    paths = []
    for name in COMPILED:
        shutil.copyfile(LINT / f"{name}.py", package / f"{name}.py")
        paths.append(package / f"{name}.py")
    return paths


def build(folder: Path, paths: list[Path]) -> None:
    """Compile the staged package in place (``.so`` files beside the copies, the shared library in ``folder``)."""
    command = [
        sys.executable, "-m", "mypyc", "--config-file", str(ROOT / "pyproject.toml"),
        "--cache-dir", str(folder / ".mypy_cache"), *[str(p.relative_to(folder)) for p in paths],
    ]
    env = {**os.environ, "MYPYPATH": str(SRC)}
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"native lint: mypyc failed (exit {done.returncode}); lint still runs the Python source")


def install(folder: Path) -> Path:
    """Move the built package and its shared library into site-packages; the package's path.

    Nothing is written over in place: a process that loaded the previous build keeps its mapped
    files (each new file is renamed over the old one, the package folder swapped whole).
    """
    site = Path(sysconfig.get_paths()["platlib"])
    target, fresh, stale = site / PACKAGE, site / f"{PACKAGE}.new", site / f"{PACKAGE}.old"
    for leftover in (fresh, stale):
        if leftover.exists():
            shutil.rmtree(leftover)
    fresh.mkdir()
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for path in (folder / PACKAGE).iterdir():
        if path.name.endswith(suffix) or path.stem in ("__init__", *SHARED):
            shutil.copy2(path, fresh / path.name)
    for library in folder.glob(f"*__mypyc{suffix}"):
        part = site / f"{library.name}.part"
        shutil.copy2(library, part)
        os.replace(part, site / library.name)
    if target.exists():
        os.replace(target, stale)
    os.replace(fresh, target)
    shutil.rmtree(stale, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="build even when the installed copy is up to date")
    args = parser.parse_args(argv)
    if not args.force and is_current():
        print("native lint: up to date")
        return 0
    lacking = missing_build_tool()
    if lacking:
        print(f"native lint: skipped, {lacking}; lint runs the Python source (same output, slower)")
        return 0
    digest = source_hash()
    with tempfile.TemporaryDirectory(prefix="lintc-") as tmp:
        folder = Path(tmp)
        build(folder, stage(folder, digest))
        target = install(folder)
    check = subprocess.run(
        [sys.executable, "-c", "from scenario_forge.lint.native import load_native; raise SystemExit(load_native() is None)"],
        cwd=ROOT, env={**{k: v for k, v in os.environ.items() if k != ENV}, "PYTHONPATH": str(SRC)},
        capture_output=True, text=True, check=False,
    )
    if check.returncode != 0:
        sys.stderr.write(check.stderr[-2000:])
        print(f"native lint: built into {target} but it does not load", file=sys.stderr)
        return 1
    print(f"native lint: built ({len(COMPILED)} modules) into {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
