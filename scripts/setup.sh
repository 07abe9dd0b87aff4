#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment at .venv/. Idempotent: a second run with
# unchanged pyproject.toml / constraints.txt skips the installs (and the lint build when the lint
# source is unchanged).
#
# torch is installed first, pinned to the CPU build (2.13.0) the machines carry on local disk;
# everything else is then resolved with constraints.txt keeping that torch and the fastapi bound
# prefect 3.8.8's server needs. llama-cpp-python compiles from source once (~7-8 min on 2 cores);
# pip's wheel cache makes later installs fast.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
EXTRAS=${SCENARIO_FORGE_EXTRAS:-train,dask,server,distilabel,dev}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

# llama-cpp-python compiles llama.cpp with -march=native; on a CPU with AMX that builds in llama.cpp's
# AMX kernels, which crash on quantized weights (the packaged Q4_1 model: a segfault at its first
# decode; ggml-org/llama.cpp#20824). -mno-amx-int8 leaves them out (x86-64 compilers that know it).
if [ "$(uname -m)" = x86_64 ] && [[ "${CMAKE_ARGS:-}" != *CMAKE_C_FLAGS* ]] \
    && echo | "${CC:-cc}" -mno-amx-int8 -x c -E - >/dev/null 2>&1; then
  export CMAKE_ARGS="${CMAKE_ARGS:+$CMAKE_ARGS }-DCMAKE_C_FLAGS=-mno-amx-int8 -DCMAKE_CXX_FLAGS=-mno-amx-int8"
fi

stamp=.venv/.scenario-forge-setup
want=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -c1-16)-$EXTRAS
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "setup: .venv is up to date"
else
  echo "setup: installing into .venv (first run compiles llama-cpp-python: several minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q torch==2.13.0
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[$EXTRAS]"
  echo "$want" > "$stamp"
fi

# A llama-cpp-python built with the AMX kernels before (by an older set-up, or reused from pip's
# wheel cache) is rebuilt once without them (not when CMAKE_ARGS set its own compiler flags). A
# rebuild that fails leaves the old build and does not stop the set-up (scenario-forge's own engine
# leaves those kernels out at load time; llama.cpp's own server does not).
if [[ "${CMAKE_ARGS:-}" == *-mno-amx-int8* ]] \
    && .venv/bin/python -c "import sys; from scenario_forge.backends.llama_engine import amx_compiled, load_llama; sys.exit(not amx_compiled(load_llama()))" 2>/dev/null; then
  echo "setup: rebuilding llama-cpp-python without llama.cpp's AMX kernels (they crash on quantized weights; several minutes)"
  version=$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('llama-cpp-python'))")
  .venv/bin/python -m pip install -q --force-reinstall --no-deps --no-cache-dir "llama-cpp-python==$version" \
    || echo "setup: the rebuild failed (above); llama.cpp's own server may crash on quantized GGUFs here"
fi

# lint's detectors compiled by mypyc (~35 s; again only when their source changed). Without mypyc,
# a C compiler or the Python headers it says so in one line, and a failed compile does not stop the
# set-up: lint then runs the Python source (same output, slower; tests/test_lint_native.py fails
# where the tools are there and the build is not). SCENARIO_FORGE_NATIVE_LINT=0 skips it.
if [ "${SCENARIO_FORGE_NATIVE_LINT:-1}" != 0 ]; then
  .venv/bin/python scripts/build_native_lint.py || echo "setup: the compiled lint did not build (above); lint runs the Python source"
fi
echo "setup: done (.venv/bin/scenario-forge)"
