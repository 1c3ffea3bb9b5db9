#!/usr/bin/env bash
# Set up a fresh venv with everything the tests need (scripts/setup_venv.sh), then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup_venv.sh
python -m pytest "$@"
