#!/usr/bin/env bash
# Train the default model from scratch on this CPU and rebuild the bundled package:
#   teacher target (external rankers' runs + the bi-encoder's cosine + grades) -> students
#   (hybrid, labels-only, point-wise-only, margin-only) -> eval on the three dev sets
#   -> static INT8 package with its fusion rule and model card in sdk/ranker_sdk/default/.
# About 2-2.5 hours on 2 cores (bi-encoder scoring ~15 min, each student ~25 min, evals ~20 min).
# Run it in the background and watch the log:
#   nohup bash scripts/train_default.sh > runs/default.log 2>&1 &
#   tail -f runs/default.log
# Re-running resumes: finished stages are skipped, an interrupted one continues from its checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup_venv.sh
OUT="${OUT:-runs/dl}"
ranker train recipe --config configs/recipe-cpu.yaml --out "$OUT"
python -m lab.build_default --run "$OUT" "$@"
