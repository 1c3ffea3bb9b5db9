#!/usr/bin/env bash
# The main job: set up the runtime alone (no torch) from a fresh clone and rank a real query's
# candidates with the bundled default package. The demo's nDCG figures come from ranker_eval's
# metrics, hence the `eval` extra (ir-measures, scipy; still no torch).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv-runtime}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q '.[eval]'
python examples/rank_trec.py "$@"
cat <<EOF

The runtime is installed in $VENV (numpy, onnxruntime, tokenizers, and the metrics; no torch). To use it:
    . $VENV/bin/activate        # then: ranker rank --help, python examples/quickstart.py
    $VENV/bin/ranker --help     # or call it by its path, without activating
The C ABI (ranker bindings) and the tests need .venv instead: bash scripts/test.sh creates it.

When reranking loses to your own first stage (the figures above compare them on trec-rag24):
fit the fusion weight on your labelled queries and rank with it,
    ranker fusion --data YOUR_DIR=SPLIT --out my-package     # then: ranker rank --package my-package --first-stage
or keep your first stage's order for those queries.
EOF
