#!/usr/bin/env bash
# Train the default model from scratch on this CPU and rebuild the bundled package:
#   teacher (SmolLM2-135M: CPT, then rank-loss LoRA) -> labels -> students -> eval on dev
#   -> INT8 package with model card in sdk/ranker_sdk/default/.
# About 1.5-2 hours on 2 cores. Run it in the background and watch the log:
#   nohup bash scripts/train_default.sh > runs/default.log 2>&1 &
#   tail -f runs/default.log
# Re-running resumes: finished stages are skipped, an interrupted one continues from its checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup_venv.sh
OUT="${OUT:-runs/default}"
ranker train recipe --config configs/recipe-cpu.yaml --out "$OUT"
python scripts/build_default.py --run "$OUT" "$@"
