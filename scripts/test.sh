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
echo
echo "Everything (ranker, the SDK, every extra, the C ABI build) is installed in $VENV:"
echo "    . $VENV/bin/activate     # then: ranker --help; or call $VENV/bin/ranker by its path"
exit $status
