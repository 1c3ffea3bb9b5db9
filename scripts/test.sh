#!/usr/bin/env bash
# Set up a fresh venv with everything the tests need (scripts/setup_venv.sh), then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup_venv.sh
status=0
python -m pytest "$@" || status=$?
echo
echo "Everything (ranker, the SDK, every extra, the C ABI build) is installed in $VENV:"
echo "    . $VENV/bin/activate     # then: ranker --help; or call $VENV/bin/ranker by its path"
exit $status
