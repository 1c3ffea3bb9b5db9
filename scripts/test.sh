#!/usr/bin/env bash
# Set up a fresh venv with everything the tests need (scripts/setup_venv.sh), then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup_venv.sh
status=0
# Lint and format check first (pyproject's [tool.ruff]); a failure fails the run, the tests still run.
python -m ruff check . || status=$?
python -m ruff format --check . || status=$?
python -m pytest "$@" || status=$?
# The runtime alone, as `pip install ranker-sdk` has it (numpy, onnxruntime, tokenizers; no torch,
# no metrics libraries) plus the test tools: tests/sdk must pass there too. Tests that build the
# tiny model with torch are marked needs_torch and skip (tests/conftest.py); a failure fails the run.
RUNTIME_VENV="${RUNTIME_VENV:-.venv-runtime-only}"
[ -x "$RUNTIME_VENV/bin/python" ] || python3 -m venv "$RUNTIME_VENV"
"$RUNTIME_VENV/bin/python" -m pip install -q -e '.[dev]' || status=$?
"$RUNTIME_VENV/bin/python" -m pytest -q tests/sdk || status=$?
echo
echo "Everything (ranker, the SDK, every extra, the C ABI build) is installed in $VENV:"
echo "    . $VENV/bin/activate     # then: ranker --help; or call $VENV/bin/ranker by its path"
exit $status
